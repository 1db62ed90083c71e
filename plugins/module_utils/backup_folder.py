# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup folder of pg_backup: lock, in-progress (partial) names, fsync, manifests, pruning.

A backup is an archive (a pg_dump custom-format file or a directory) plus its
manifest NAME.manifest.json, written last: a backup without a manifest is not
complete, so it is never used, counted or pruned. Work in progress lives under
hidden .dbstack-partial-* names and becomes visible by rename. Nothing here
talks to PostgreSQL; the decisions (names, retention, manifest checks) are the
pure functions of backup.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import json
import os
import shutil
import tempfile
import threading
import time

from ansible_collections.dbstack.ha.plugins.module_utils.backup import (
    LOCK_NAME,
    PARTIAL_PREFIX,
    ManifestError,
    archive_name,
    archive_size,
    backup_name,
    manifest_name,
    parse_manifest,
    scan,
)
from ansible_collections.dbstack.ha.plugins.module_utils.files import fsync_path

LOCK_POLL_SECONDS = 0.2


class FolderError(Exception):
    """Something about the folder that stops the run; the message says what and how to fix it."""


def fsync_tree(path):
    """fsync a file, or every file and folder of a directory archive."""
    if os.path.isdir(path):
        for root, _dirs, files in os.walk(path):
            for name in files:
                fsync_path(os.path.join(root, name))
            fsync_path(root)
    else:
        fsync_path(path)


def remove_path(path):
    """Remove a file or a directory tree; a missing one is fine."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


class BackupFolder(object):
    """One backup folder (pg_backup's dest)."""

    def __init__(self, dest):
        self.dest = os.path.abspath(dest)
        self._lock_handle = None

    def path(self, entry):
        return os.path.join(self.dest, entry)

    def partial_path(self, entry):
        """The hidden in-progress name of an entry (an archive or a manifest)."""
        return os.path.join(self.dest, PARTIAL_PREFIX + entry)

    # -- set-up -------------------------------------------------------------------------------------
    def exists(self):
        return os.path.isdir(self.dest)

    def prepare(self, create, check_mode=False):
        """Make sure the folder is usable; returns (exists, created).

        create: make it (mode 0700) when missing, and prove it writable. In check mode nothing is made:
        exists is then False for a folder that would be created.
        """
        dest = self.dest
        if os.path.exists(dest) and not os.path.isdir(dest):
            raise FolderError("dest %s exists and is not a directory" % dest)
        created = False
        if not os.path.exists(dest):
            if not create:
                raise FolderError("dest %s does not exist" % dest)
            if check_mode:
                return False, False
            try:
                os.makedirs(dest, 0o700)
            except OSError as exc:
                raise FolderError("dest %s cannot be created: %s (running as uid %d)"
                                  % (dest, exc.strerror or exc, os.geteuid()))
            created = True
        if create and not check_mode:
            try:
                fd, probe = tempfile.mkstemp(prefix=PARTIAL_PREFIX + "probe-", dir=dest)
                os.close(fd)
                os.unlink(probe)
            except OSError as exc:
                raise FolderError("dest %s is not writable: %s (running as uid %d)"
                                  % (dest, exc.strerror or exc, os.geteuid()))
        elif create and not os.access(dest, os.W_OK | os.X_OK):
            raise FolderError("dest %s is not writable by uid %d" % (dest, os.geteuid()))
        return True, created

    def free_bytes(self):
        fs = os.statvfs(self.dest)
        return fs.f_bavail * fs.f_frsize

    # -- the lock -----------------------------------------------------------------------------------
    def lock(self, exclusive, timeout):
        """flock the folder's lock file: exclusive to write, shared to read; waits up to timeout seconds.

        A shared lock on a folder that has no lock file yet is not taken (there is no writer to wait for,
        and a reader must not create files). Released by unlock() or when the process ends.
        """
        path = self.path(LOCK_NAME)
        try:
            if exclusive:
                handle = open(path, "a")
            elif os.path.exists(path):
                handle = open(path, "r")
            else:
                return False
        except (IOError, OSError) as exc:
            raise FolderError("cannot open the lock file %s: %s" % (path, exc))
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), mode)
                self._lock_handle = handle
                return True
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    handle.close()
                    raise FolderError("another pg_backup run is using %s (lock %s held for more than "
                                      "lock_timeout=%ds)" % (self.dest, path, timeout))
                time.sleep(LOCK_POLL_SECONDS)

    def unlock(self):
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    # -- reading ------------------------------------------------------------------------------------
    def usable(self, database):
        """(backups, problems): this database's backups, newest first, whose archive has the size its manifest says."""
        found, problems = scan(self.dest, database)
        usable = []
        for backup in found:
            size = archive_size(backup["archive_path"])
            if size != backup["size_bytes"]:
                problems.append("%s: archive is %d bytes, its manifest says %d (truncated or altered); not used"
                                % (backup["name"], size, backup["size_bytes"]))
                continue
            usable.append(backup)
        return usable, problems

    def find(self, name):
        """The backup called name (its manifest, with manifest_path and archive_path); FolderError when unusable."""
        if not name or "/" in name or name.startswith("."):
            raise FolderError("name %r is not a backup name" % name)
        path = self.path(manifest_name(name))
        try:
            with open(path) as handle:
                backup = parse_manifest(handle.read(), path)
        except (IOError, OSError) as exc:
            raise FolderError("backup %s not found in %s (%s)" % (name, self.dest, exc.strerror or exc))
        except ManifestError as exc:
            raise FolderError("the manifest of %s cannot be used: %s" % (name, exc))
        backup = dict(backup, manifest_path=path, archive_path=self.path(backup["archive"]))
        if not os.path.exists(backup["archive_path"]):
            raise FolderError("backup %s has a manifest but its archive %s is missing" % (name, backup["archive_path"]))
        return backup

    def newest(self, database):
        found, problems = scan(self.dest, database)
        if not found:
            detail = (" (%s)" % "; ".join(problems)) if problems else ""
            raise FolderError("no backup of database %s in %s%s" % (database, self.dest, detail))
        return found[0]

    def new_name(self, database, when, fmt, taken=()):
        """A backup name for database at datetime `when` that no manifest or archive in the folder uses yet."""
        taken = set(taken)
        while True:
            name = backup_name(database, when, taken)
            if not (os.path.exists(self.path(manifest_name(name))) or
                    os.path.exists(self.path(archive_name(name, fmt)))):
                return name
            taken.add(name)

    # -- writing ------------------------------------------------------------------------------------
    def remove_partials(self):
        """Remove leftovers of interrupted runs (hidden partial entries); returns their names."""
        removed = []
        for entry in sorted(os.listdir(self.dest)):
            if entry.startswith(PARTIAL_PREFIX):
                remove_path(self.path(entry))
                removed.append(entry)
        return removed

    def publish(self, partial, manifest, synced=False):
        """Make a finished archive a backup: rename it to its final name, write its manifest, make both durable.

        partial: the archive under its partial name. synced: the archive's content is already on disk (pg_dump
        10 and newer fsyncs what it writes), else it is fsynced here. The manifest is written and fsynced under
        a partial name, then renamed; one fsync of the folder makes both renames durable (a manifest whose
        archive did not survive a crash is ignored by scan()). Returns (archive_path, manifest_path).
        """
        if not synced:
            fsync_tree(partial)
        final = self.path(manifest["archive"])
        os.rename(partial, final)
        manifest_path = self._write_manifest(manifest)
        fsync_path(self.dest)
        return final, manifest_path

    def write_manifest(self, manifest):
        path = self._write_manifest(manifest)
        fsync_path(self.dest)
        return path

    def _write_manifest(self, manifest):
        final = self.path(manifest_name(manifest["name"]))
        fd, tmp = tempfile.mkstemp(prefix=PARTIAL_PREFIX, suffix=".manifest", dir=self.dest)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(manifest, handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fchmod(handle.fileno(), 0o600)
                os.fsync(handle.fileno())
            os.rename(tmp, final)
        except BaseException:
            remove_path(tmp)
            raise
        return final

    def delete(self, backup):
        """Remove a backup: its archive first (renamed out of sight, so it stops counting), then its manifest."""
        hidden = self.partial_path(backup["archive"])
        os.rename(backup["archive_path"], hidden)
        os.unlink(backup["manifest_path"])
        remove_path(hidden)


class Flusher(object):
    """Write an archive back to disk while it is being written, and make it durable at the end.

    While pg_dump writes (run with --no-sync), a thread fdatasyncs the file every `step` bytes of growth, so
    the disk works while pg_dump compresses and little is left dirty at the end. finish() then fsyncs the
    archive in that thread while the caller reads it once for its checksum: the disk-bound fsync and the
    CPU-bound hash overlap instead of following each other. A directory archive is only fsynced at the end.
    """

    def __init__(self, path, step=64 * 1024 * 1024, interval=0.25):
        self.path = path
        self.step = step
        self.interval = interval
        self.flushes = 0
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="pg_backup-flusher")
        self._thread.daemon = True
        self._thread.start()

    def _follow(self):
        fd = None
        flushed = 0
        try:
            while not self._stop.wait(self.interval):
                if fd is None:
                    if not os.path.isfile(self.path):
                        continue  # not created yet, or a directory archive
                    fd = os.open(self.path, os.O_RDONLY)
                size = os.fstat(fd).st_size
                if size - flushed >= self.step:
                    os.fdatasync(fd)
                    self.flushes += 1
                    flushed = size
            if fd is None and os.path.isfile(self.path):
                fd = os.open(self.path, os.O_RDONLY)
            if fd is not None:
                os.fsync(fd)
                self.flushes += 1
            elif os.path.isdir(self.path):
                fsync_tree(self.path)
                self.flushes += 1
        except (IOError, OSError) as exc:
            self.error = exc
        finally:
            if fd is not None:
                os.close(fd)

    def finish(self, work=None):
        """Stop following, make the archive durable, and meanwhile run work() (the checksum); returns its result."""
        self._stop.set()
        try:
            result = work() if work is not None else None
        finally:
            self._thread.join()
        if self.error is not None:
            raise self.error
        return result

    def abandon(self):
        """Stop without caring about the archive (pg_dump failed: it is removed)."""
        self._stop.set()
        self._thread.join()
