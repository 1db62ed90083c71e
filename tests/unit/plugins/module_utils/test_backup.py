# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os

import pytest

from ansible_collections.dbstack.ha.plugins.module_utils.backup import (
    ManifestError,
    archive_name,
    backup_name,
    build_manifest,
    check_dump_version,
    check_restore_version,
    checksum_archive,
    compare_counts,
    newest_fresh,
    parse_duration,
    parse_manifest,
    pgpass_line,
    public_manifest,
    scan,
    select_prune,
    valid_database_name,
    version_text,
)

NOW = 1_800_000_000.0
DAY = 86400.0


def backups(*ages_days):
    """Backups with the given ages in days, newest first (as scan returns them)."""
    return [dict(name="db-%d" % i, created_epoch=NOW - age * DAY) for i, age in enumerate(sorted(ages_days))]


def names(items):
    return sorted(b["name"] for b in items)


# -- retention ------------------------------------------------------------------------
def test_no_rule_prunes_nothing():
    assert select_prune(backups(0, 1, 50, 400), now=NOW) == []


@pytest.mark.parametrize("keep, expected", [(1, ["db-1", "db-2", "db-3"]), (2, ["db-2", "db-3"]), (4, []), (9, [])])
def test_keep_by_count(keep, expected):
    assert names(select_prune(backups(0, 1, 2, 3), keep=keep, now=NOW)) == expected


def test_keep_days_by_age():
    assert names(select_prune(backups(0.1, 1.5, 6.9, 7.1, 30), keep_days=7, now=NOW)) == ["db-3", "db-4"]


def test_either_rule_keeps():
    # keep=2 keeps db-0, db-1; keep_days=5 keeps db-2 (3 days) too.
    assert names(select_prune(backups(0, 1, 3, 6, 9), keep=2, keep_days=5, now=NOW)) == ["db-3", "db-4"]


def test_newest_is_never_pruned_even_when_old():
    assert select_prune(backups(100), keep_days=1, now=NOW) == []
    assert names(select_prune(backups(100, 200), keep_days=1, now=NOW)) == ["db-1"]


def test_unsorted_input_is_sorted_by_time():
    items = list(reversed(backups(0, 1, 2)))
    assert names(select_prune(items, keep=1, now=NOW)) == ["db-1", "db-2"]


def test_newest_fresh():
    assert newest_fresh(backups(0.5 / 24), 3600, NOW)["name"] == "db-0"
    assert newest_fresh(backups(2 / 24), 3600, NOW) is None
    assert newest_fresh([], 3600, NOW) is None


# -- durations, names -------------------------------------------------------------------
@pytest.mark.parametrize("value, seconds", [("90", 90), ("90s", 90), ("15m", 900), ("26h", 93600), ("1.5d", 129600),
                                            ("1w", 604800), (3600, 3600), (None, None), ("", None)])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["1y", "abc", "-5m", "0", "h"])
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def test_backup_name_is_utc_and_unique():
    when = datetime.datetime(2026, 11, 22, 3, 10, 0, tzinfo=datetime.timezone.utc)
    assert backup_name("appdb", when) == "appdb-20261122T031000Z"
    assert backup_name("appdb", when, taken={"appdb-20261122T031000Z"}) == "appdb-20261122T031000Z-2"
    assert archive_name("appdb-20261122T031000Z", "custom").endswith(".dump")
    assert archive_name("appdb-20261122T031000Z", "directory").endswith(".dir")


@pytest.mark.parametrize("name, ok", [("appdb", True), ("my db", True), ("a/b", False), ("", False), ("..", False),
                                      ("x" * 64, False)])
def test_valid_database_name(name, ok):
    assert valid_database_name(name) is ok


# -- versions ----------------------------------------------------------------------------
def test_version_text():
    assert version_text(150020) == "15.20"
    assert version_text(90624) == "9.6.24"


def test_dump_version_rules():
    assert check_dump_version("pg_dump", (15, 20), 150018) is None
    assert check_dump_version("pg_dump", (17, 2), 150018) is None  # newer client dumps an older server
    problem = check_dump_version("/usr/bin/pg_dump", (14, 9), 150018)
    assert "cannot dump a newer server" in problem and "postgresql-client-15" in problem
    assert "could not read" in check_dump_version("pg_dump", None, 150018)


def test_restore_version_rules():
    assert check_restore_version("pg_restore", (15, 1), 15) is None
    assert check_restore_version("pg_restore", (16, 1), 15) is None
    assert "pg_restore 16 or newer" in check_restore_version("pg_restore", (15, 1), 16)
    assert check_restore_version("pg_restore", (15, 1), None) is None


def test_pgpass_line_escapes():
    assert pgpass_line("p:w\\d") == "*:*:*:*:p\\:w\\\\d\n"


# -- manifests ---------------------------------------------------------------------------
def manifest(**overrides):
    data = build_manifest(name="appdb-20261122T031000Z", database="appdb", format="custom",
                          archive="appdb-20261122T031000Z.dump", sha256="0" * 64, size_bytes=10,
                          created_epoch=NOW, tables={"public.t": 3})
    data.update(overrides)
    return data


def test_parse_manifest_accepts_ours():
    data = parse_manifest(json.dumps(manifest()), "/b/appdb-20261122T031000Z.manifest.json")
    assert data["database"] == "appdb" and data["tables"] == {"public.t": 3}


@pytest.mark.parametrize("text, why", [
    ("not json", "not JSON"),
    (json.dumps({"name": "x"}), "not a dbstack.ha pg_backup manifest"),
    (json.dumps(manifest(size_bytes="10")), "size_bytes"),
    (json.dumps(manifest(size_bytes=True)), "size_bytes"),
    (json.dumps(manifest(format="tar")), "unknown format"),
    (json.dumps(manifest(archive="../etc/passwd")), "does not match"),
    (json.dumps(manifest(name="../x", archive="../x.dump")), "not a pg_backup name"),
])
def test_parse_manifest_rejects(text, why):
    with pytest.raises(ManifestError, match=why):
        parse_manifest(text)


def test_parse_manifest_checks_its_file_name():
    with pytest.raises(ManifestError, match="does not match the backup name"):
        parse_manifest(json.dumps(manifest()), "/b/other-20261122T031000Z.manifest.json")


def write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def test_scan_only_sees_our_manifests(tmp_path):
    dest = str(tmp_path)
    for age, name in ((0, "appdb-20261122T031000Z"), (1, "appdb-20261121T031000Z")):
        write(os.path.join(dest, name + ".dump"), "x" * 10)
        write(os.path.join(dest, name + ".manifest.json"),
              json.dumps(manifest(name=name, archive=name + ".dump", created_epoch=NOW - age * DAY)))
    other = "otherdb-20261122T031000Z"
    write(os.path.join(dest, other + ".dump"), "y")
    write(os.path.join(dest, other + ".manifest.json"), json.dumps(manifest(name=other, archive=other + ".dump",
                                                                            database="otherdb")))
    gone = "appdb-20261101T031000Z"
    write(os.path.join(dest, gone + ".manifest.json"), json.dumps(manifest(name=gone, archive=gone + ".dump")))
    write(os.path.join(dest, "random.manifest.json"), "{}")
    write(os.path.join(dest, "appdb-20200101T000000Z.dump"), "no manifest")
    found, problems = scan(dest, "appdb")
    assert [b["name"] for b in found] == ["appdb-20261122T031000Z", "appdb-20261121T031000Z"]
    assert any("archive %s.dump is missing" % gone in p for p in problems)
    assert any(p.startswith("random.manifest.json ignored") for p in problems)
    assert sorted(b["name"] for b in scan(dest)[0]) == ["appdb-20261121T031000Z", "appdb-20261122T031000Z", other]


def test_checksum_of_directory_changes_with_any_file(tmp_path):
    folder = tmp_path / "a.dir"
    folder.mkdir()
    (folder / "toc.dat").write_bytes(b"toc")
    (folder / "3001.dat.gz").write_bytes(b"data")
    digest, size, files = checksum_archive(str(folder))
    assert size == 7 and sorted(files) == ["3001.dat.gz", "toc.dat"]
    (folder / "3001.dat.gz").write_bytes(b"dat")
    assert checksum_archive(str(folder))[0] != digest
    (folder / "3001.dat.gz").write_bytes(b"data")
    assert checksum_archive(str(folder))[0] == digest
    (folder / "extra").write_bytes(b"")
    assert checksum_archive(str(folder))[0] != digest


def test_compare_counts():
    assert compare_counts({"a": 1, "b": 2}, {"a": 1, "b": 2}) == []
    diffs = compare_counts({"a": 1, "b": 2}, {"a": 5, "c": 0})
    assert diffs == ["a: 5 rows, expected 1", "b: missing after restore (expected 2 rows)",
                     "c: not in the backup's manifest (0 rows)"]


def test_public_manifest_drops_internals():
    data = dict(manifest(files={"toc.dat": "x"}), manifest_path="/p", archive_path="/a")
    assert set(public_manifest(data)) == set(manifest())
