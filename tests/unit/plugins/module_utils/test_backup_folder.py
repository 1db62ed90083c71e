# -*- coding: utf-8 -*-
"""The backup folder on real temporary directories and files: lock, partial names, publishing, pruning."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import stat
import time

import pytest

from ansible_collections.dbstack.ha.plugins.module_utils.backup import (
    LOCK_NAME,
    PARTIAL_PREFIX,
    build_manifest,
    checksum_archive,
    parse_manifest,
    scan,
)
from ansible_collections.dbstack.ha.plugins.module_utils.backup_folder import (
    BackupFolder,
    FolderError,
    Flusher,
    fsync_tree,
    remove_path,
)

NOW = 1_800_000_000.0
NAME = "appdb-20261122T031000Z"


def manifest(name=NAME, size=10, fmt="custom", created=NOW, database="appdb"):
    return build_manifest(name=name, database=database, format=fmt,
                          archive=name + (".dump" if fmt == "custom" else ".dir"), sha256="0" * 64,
                          size_bytes=size, created_epoch=created)


def put_backup(folder, name=NAME, size=10, created=NOW, database="appdb"):
    """A complete backup the way dump() makes one: partial archive, then publish()."""
    partial = folder.partial_path(name + ".dump")
    with open(partial, "wb") as handle:
        handle.write(b"x" * size)
    return folder.publish(partial, manifest(name, size, created=created, database=database))


def test_prepare_creates_a_private_folder_and_check_mode_creates_nothing(tmp_path):
    dest = tmp_path / "backups"
    assert BackupFolder(str(dest)).prepare(create=True, check_mode=True) == (False, False)
    assert not dest.exists()
    assert BackupFolder(str(dest)).prepare(create=True) == (True, True)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert os.listdir(str(dest)) == []  # the write probe is gone
    assert BackupFolder(str(dest)).prepare(create=True) == (True, False)


def test_prepare_refuses_what_cannot_be_a_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(FolderError, match="exists and is not a directory"):
        BackupFolder(str(blocker)).prepare(create=True)
    with pytest.raises(FolderError, match="cannot be created: Not a directory"):
        BackupFolder(str(blocker / "backups")).prepare(create=True)
    with pytest.raises(FolderError, match="does not exist"):
        BackupFolder(str(tmp_path / "missing")).prepare(create=False)


def test_exclusive_lock_excludes_a_second_writer_until_released(tmp_path):
    first, second = BackupFolder(str(tmp_path)), BackupFolder(str(tmp_path))
    assert first.lock(exclusive=True, timeout=0)
    start = time.monotonic()
    with pytest.raises(FolderError, match="another pg_backup run is using .*lock_timeout=0s"):
        second.lock(exclusive=True, timeout=0)
    with pytest.raises(FolderError, match="lock_timeout=1s"):
        second.lock(exclusive=False, timeout=1)  # a reader waits for the writer, then gives up
    assert time.monotonic() - start >= 0.9
    first.unlock()
    assert second.lock(exclusive=True, timeout=0)
    second.unlock()


def test_shared_locks_coexist_and_a_reader_creates_no_lock_file(tmp_path):
    reader = BackupFolder(str(tmp_path))
    assert reader.lock(exclusive=False, timeout=0) is False
    assert not (tmp_path / LOCK_NAME).exists()
    (tmp_path / LOCK_NAME).write_text("")
    other = BackupFolder(str(tmp_path))
    assert reader.lock(exclusive=False, timeout=0) and other.lock(exclusive=False, timeout=0)
    with pytest.raises(FolderError):
        BackupFolder(str(tmp_path)).lock(exclusive=True, timeout=0)
    reader.unlock()
    other.unlock()


def test_publish_renames_the_archive_and_writes_the_manifest_last(tmp_path):
    folder = BackupFolder(str(tmp_path))
    archive, manifest_path = put_backup(folder)
    assert archive == str(tmp_path / (NAME + ".dump")) and manifest_path == str(tmp_path / (NAME + ".manifest.json"))
    assert sorted(os.listdir(str(tmp_path))) == [NAME + ".dump", NAME + ".manifest.json"]  # no partial left
    assert stat.S_IMODE(os.stat(manifest_path).st_mode) == 0o600
    with open(manifest_path) as handle:
        assert parse_manifest(handle.read(), manifest_path)["size_bytes"] == 10
    assert [b["name"] for b in scan(str(tmp_path))[0]] == [NAME]


def test_publish_of_a_directory_archive_fsyncs_it_when_asked(tmp_path):
    folder = BackupFolder(str(tmp_path))
    partial = folder.partial_path(NAME + ".dir")
    os.makedirs(os.path.join(partial, "sub"))
    for rel in ("toc.dat", "3001.dat.gz", os.path.join("sub", "x")):
        with open(os.path.join(partial, rel), "wb") as handle:
            handle.write(b"abc")
    archive, _manifest = folder.publish(partial, manifest(fmt="directory", size=9), synced=False)
    assert sorted(os.listdir(archive)) == ["3001.dat.gz", "sub", "toc.dat"]
    assert folder.usable("appdb")[0][0]["archive_path"] == archive


def test_a_manifest_that_cannot_be_written_leaves_no_partial(tmp_path):
    folder = BackupFolder(str(tmp_path))
    bad = dict(manifest(), tables=object())  # not JSON
    with pytest.raises(TypeError):
        folder.write_manifest(bad)
    assert os.listdir(str(tmp_path)) == []


def test_fsync_tree_reaches_every_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"1")
    fsync_tree(str(tmp_path))
    fsync_tree(str(tmp_path / "a" / "f"))
    with pytest.raises(OSError):
        fsync_tree(str(tmp_path / "missing"))


def test_remove_partials_takes_only_hidden_leftovers(tmp_path):
    folder = BackupFolder(str(tmp_path))
    put_backup(folder)
    (tmp_path / (PARTIAL_PREFIX + "x.dump")).write_bytes(b"half")
    (tmp_path / (PARTIAL_PREFIX + "y.dir")).mkdir()
    (tmp_path / (PARTIAL_PREFIX + "y.dir") / "toc.dat").write_bytes(b"half")
    (tmp_path / "notes.txt").write_text("someone else's")
    assert folder.remove_partials() == [PARTIAL_PREFIX + "x.dump", PARTIAL_PREFIX + "y.dir"]
    assert sorted(os.listdir(str(tmp_path))) == [NAME + ".dump", NAME + ".manifest.json", "notes.txt"]
    assert folder.remove_partials() == []


def test_usable_skips_a_truncated_archive(tmp_path):
    folder = BackupFolder(str(tmp_path))
    put_backup(folder, "appdb-20261121T031000Z", created=NOW - 86400)
    archive, _m = put_backup(folder)
    with open(archive, "r+b") as handle:
        handle.truncate(4)
    usable, problems = folder.usable("appdb")
    assert [b["name"] for b in usable] == ["appdb-20261121T031000Z"]
    assert problems == ["%s: archive is 4 bytes, its manifest says 10 (truncated or altered); not used" % NAME]


def test_find_and_newest(tmp_path):
    folder = BackupFolder(str(tmp_path))
    with pytest.raises(FolderError, match="no backup of database appdb in %s" % tmp_path):
        folder.newest("appdb")
    put_backup(folder, "appdb-20261121T031000Z", created=NOW - 86400)
    put_backup(folder)
    put_backup(folder, "otherdb-20261123T031000Z", created=NOW + 86400, database="otherdb")
    assert folder.newest("appdb")["name"] == NAME
    found = folder.find("appdb-20261121T031000Z")
    assert found["archive_path"] == str(tmp_path / "appdb-20261121T031000Z.dump")
    for bad in ("../etc/passwd", ".hidden", ""):
        with pytest.raises(FolderError, match="is not a backup name"):
            folder.find(bad)
    with pytest.raises(FolderError, match="backup appdb-20200101T000000Z not found"):
        folder.find("appdb-20200101T000000Z")
    os.unlink(found["archive_path"])
    with pytest.raises(FolderError, match="has a manifest but its archive .* is missing"):
        folder.find("appdb-20261121T031000Z")
    (tmp_path / "broken-20261122T031000Z.manifest.json").write_text("{")
    with pytest.raises(FolderError, match="cannot be used: not JSON"):
        folder.find("broken-20261122T031000Z")


def test_new_name_avoids_anything_already_there(tmp_path):
    folder = BackupFolder(str(tmp_path))
    when = datetime.datetime(2026, 11, 22, 3, 10, tzinfo=datetime.timezone.utc)
    assert folder.new_name("appdb", when, "custom") == NAME
    (tmp_path / (NAME + ".dump")).write_bytes(b"an archive without manifest")
    assert folder.new_name("appdb", when, "custom") == NAME + "-2"
    (tmp_path / (NAME + "-2.manifest.json")).write_text("{}")
    assert folder.new_name("appdb", when, "custom") == NAME + "-3"
    assert folder.new_name("appdb", when, "custom", taken={NAME + "-3"}) == NAME + "-4"
    assert folder.new_name("appdb", when, "directory") == NAME  # a .dump does not block a .dir


def test_delete_removes_archive_then_manifest(tmp_path):
    folder = BackupFolder(str(tmp_path))
    put_backup(folder)
    partial = folder.partial_path("appdb-20261121T031000Z.dir")
    os.makedirs(partial)
    with open(os.path.join(partial, "toc.dat"), "wb") as handle:
        handle.write(b"0123456789")
    folder.publish(partial, manifest("appdb-20261121T031000Z", fmt="directory", created=NOW - 86400))
    old = folder.find("appdb-20261121T031000Z")
    folder.delete(old)
    assert sorted(os.listdir(str(tmp_path))) == [NAME + ".dump", NAME + ".manifest.json"]


def test_remove_path_handles_files_dirs_links_and_nothing(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"")
    (tmp_path / "f").write_bytes(b"")
    os.symlink(str(tmp_path / "d"), str(tmp_path / "link"))
    for name in ("link", "d", "f", "missing"):
        remove_path(str(tmp_path / name))
    assert os.listdir(str(tmp_path)) == []


def test_directory_checksum_is_the_same_with_threads(tmp_path):
    folder = tmp_path / "a.dir"
    folder.mkdir()
    for i in range(6):
        (folder / ("%d.dat.gz" % i)).write_bytes(os.urandom(3 * 1024 * 1024 + i))
    one = checksum_archive(str(folder))
    assert checksum_archive(str(folder), jobs=4) == one
    assert one[1] == sum(3 * 1024 * 1024 + i for i in range(6))


def test_flusher_writes_back_while_the_file_grows_then_syncs_during_the_work(tmp_path):
    path = str(tmp_path / (PARTIAL_PREFIX + "a.dump"))
    flusher = Flusher(path, step=1024 * 1024, interval=0.01)
    time.sleep(0.05)  # not there yet: nothing to do
    with open(path, "wb") as handle:
        for _chunk in range(4):
            handle.write(os.urandom(1024 * 1024))
            handle.flush()
            time.sleep(0.1)
    during = flusher.flushes
    assert during >= 2  # written back while it grew
    assert flusher.finish(lambda: checksum_archive(path)) == checksum_archive(path)
    assert flusher.flushes == during + 1  # and made durable at the end


def test_flusher_syncs_a_directory_archive_at_the_end_and_nothing_when_there_is_none(tmp_path):
    folder = tmp_path / "a.dir"
    folder.mkdir()
    (folder / "toc.dat").write_bytes(b"toc")
    flusher = Flusher(str(folder), interval=0.01)
    time.sleep(0.05)
    assert flusher.flushes == 0
    assert flusher.finish() is None and flusher.flushes == 1
    nothing = Flusher(str(tmp_path / "missing"), interval=0.01)
    assert nothing.finish(lambda: "hashed") == "hashed" and nothing.flushes == 0


def test_flusher_abandon_stops_it_and_an_exception_in_the_work_still_stops_it(tmp_path):
    path = tmp_path / "x.dump"
    path.write_bytes(b"x")
    flusher = Flusher(str(path), interval=0.01)
    flusher.abandon()
    assert not flusher._thread.is_alive()
    flusher = Flusher(str(path), interval=0.01)

    def broken():
        raise ValueError("checksum failed")
    with pytest.raises(ValueError):
        flusher.finish(broken)
    assert not flusher._thread.is_alive()
