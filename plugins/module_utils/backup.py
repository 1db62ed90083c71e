# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the pg_backup module: names, manifests, retention, versions, checksums.

Nothing here talks to PostgreSQL, so it can be unit tested. File helpers only
read and write inside the backup folder they are given.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import json
import os
import re

MANIFEST_MARKER = "dbstack_backup"
MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
PARTIAL_PREFIX = ".dbstack-partial-"
LOCK_NAME = ".dbstack-backup.lock"
FORMAT_SUFFIX = {"custom": ".dump", "directory": ".dir"}

# appdb-20261122T031000Z (an optional -N when two backups start in the same second)
_NAME = re.compile(r"^(?P<db>.+)-(?P<ts>\d{8}T\d{6}Z)(?:-(?P<seq>\d+))?$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DATABASE_NAME = re.compile(r"^[^\x00/\\]{1,63}$")
HASH_CHUNK = 1024 * 1024


class ManifestError(ValueError):
    """A manifest that is not one of ours or cannot be used."""


def parse_duration(value):
    """'90' / '90s' / '15m' / '26h' / '7d' / '1w' -> seconds (float); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError("%r is not a duration: use seconds or a number with s, m, h, d or w (e.g. 26h)" % (value,))
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be above 0, got %r" % (value,))
    return seconds


def valid_database_name(name):
    return bool(name) and bool(_DATABASE_NAME.match(name)) and name not in (".", "..")


def backup_name(database, when, taken=()):
    """appdb-20261122T031000Z, unique among `taken` names (UTC timestamp of the snapshot)."""
    base = "%s-%s" % (database, when.strftime("%Y%m%dT%H%M%SZ"))
    name, seq = base, 1
    while name in taken:
        seq += 1
        name = "%s-%d" % (base, seq)
    return name


def archive_name(name, fmt):
    return name + FORMAT_SUFFIX[fmt]


def manifest_name(name):
    return name + MANIFEST_SUFFIX


def server_major(server_version_num):
    """150020 -> 15 (and 90624 -> 9.6 as 9 for the old scheme, enough for comparisons)."""
    num = int(server_version_num)
    return num // 10000


def version_text(server_version_num):
    num = int(server_version_num)
    if num >= 100000:
        return "%d.%d" % (num // 10000, num % 10000)
    return "%d.%d.%d" % (num // 10000, (num // 100) % 100, num % 100)


def check_dump_version(tool, client, server_num):
    """None when `tool` (client (major, minor)) can dump a server of server_num, else why not."""
    if client is None:
        return "could not read the version of %s" % tool
    server = server_major(server_num)
    if client[0] < server:
        return ("%s is version %d.%d but the server is PostgreSQL %s: pg_dump cannot dump a newer server. "
                "Install the PostgreSQL %d client tools (Debian: postgresql-client-%d) or point pg_bin_dir at them"
                % (tool, client[0], client[1], version_text(server_num), server, server))
    return None


def check_restore_version(tool, client, archive_client_major):
    """pg_restore must be at least as new as the pg_dump that wrote the archive."""
    if client is None:
        return "could not read the version of %s" % tool
    if archive_client_major is not None and client[0] < int(archive_client_major):
        return ("%s is version %d.%d but the archive was written by pg_dump %s: use pg_restore %s or newer "
                "(pg_bin_dir)" % (tool, client[0], client[1], archive_client_major, archive_client_major))
    return None


def pgpass_escape(value):
    """Escape ':' and '\\' for a .pgpass field."""
    return str(value).replace("\\", "\\\\").replace(":", "\\:")


def pgpass_line(password):
    """One wildcard line: the file is private to one pg_dump / pg_restore run."""
    return "*:*:*:*:%s\n" % pgpass_escape(password)


def sha256_file(path):
    """sha256 of a file in one sequential read into a reused buffer (hashlib releases the GIL while hashing)."""
    digest = hashlib.sha256()
    buf = bytearray(HASH_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buf)
            if not count:
                break
            digest.update(view[:count])
    return digest.hexdigest()


def archive_files(path):
    """[(relative path, size)] of an archive: the file itself, or every file of a directory archive, sorted."""
    if os.path.isfile(path):
        return [(os.path.basename(path), os.path.getsize(path))]
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in files:
            full = os.path.join(root, name)
            found.append((os.path.relpath(full, path), os.path.getsize(full)))
    return sorted(found)


def _hash_all(paths, jobs):
    """sha256 of each path, with up to `jobs` threads for several files (each file is one sequential read)."""
    if jobs <= 1 or len(paths) <= 1:
        return [sha256_file(p) for p in paths]
    from concurrent.futures import ThreadPoolExecutor  # only directory archives with jobs > 1 need it

    with ThreadPoolExecutor(max_workers=min(jobs, len(paths))) as pool:
        return list(pool.map(sha256_file, paths))


def checksum_archive(path, jobs=1):
    """(sha256, size, {relative file: sha256}) of a custom-format file or a directory archive.

    A directory's checksum is the sha256 of its sorted 'relative-path size sha256' lines,
    so a missing, extra, truncated or altered file changes it. Its files are hashed by up to
    `jobs` threads; every byte is read once.
    """
    if os.path.isfile(path):
        digest = sha256_file(path)
        return digest, os.path.getsize(path), {os.path.basename(path): digest}
    listing = archive_files(path)
    digests = _hash_all([os.path.join(path, rel) for rel, _size in listing], jobs)
    files = {}
    total = 0
    tree = hashlib.sha256()
    for (rel, size), digest in zip(listing, digests):
        files[rel] = digest
        total += size
        tree.update(("%s %d %s\n" % (rel, size, digest)).encode("utf-8"))
    return tree.hexdigest(), total, files


def archive_size(path):
    return sum(size for _rel, size in archive_files(path))


def utc_datetime(epoch):
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)


def utc_iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_manifest(**fields):
    manifest = {MANIFEST_MARKER: MANIFEST_VERSION}
    manifest.update(fields)
    return manifest


def parse_manifest(text, manifest_file=None):
    """Parse and validate a manifest's text; raises ManifestError when it is not a usable dbstack manifest."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ManifestError("not JSON (%s)" % exc)
    if not isinstance(data, dict) or data.get(MANIFEST_MARKER) != MANIFEST_VERSION:
        raise ManifestError("not a dbstack.ha pg_backup manifest (no %s: %d)" % (MANIFEST_MARKER, MANIFEST_VERSION))
    for key, kind in (("name", str), ("database", str), ("format", str), ("archive", str), ("sha256", str),
                      ("size_bytes", int), ("created_epoch", (int, float))):
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise ManifestError("field %s is missing or has the wrong type" % key)
    if data["format"] not in FORMAT_SUFFIX:
        raise ManifestError("unknown format %r" % data["format"])
    if data["archive"] != archive_name(data["name"], data["format"]):
        raise ManifestError("archive %r does not match name %r and format %r"
                            % (data["archive"], data["name"], data["format"]))
    if not _NAME.match(data["name"]) or "/" in data["name"] or data["name"].startswith("."):
        raise ManifestError("name %r is not a pg_backup name" % data["name"])
    if manifest_file is not None and os.path.basename(manifest_file) != manifest_name(data["name"]):
        raise ManifestError("file name %s does not match the backup name %s"
                            % (os.path.basename(manifest_file), data["name"]))
    return data


def scan(dest, database=None):
    """What is in dest: (backups, problems).

    backups: manifests of our backups whose archive exists, newest first, each with
      'manifest_path', 'archive_path' and 'present_size' added; only for `database` when given.
    problems: human-readable notes about manifests that cannot be used (never touched).
    Anything without one of our manifests is not ours and is ignored.
    """
    backups, problems = [], []
    try:
        entries = sorted(os.listdir(dest))
    except OSError as exc:
        return [], ["cannot list %s: %s" % (dest, exc.strerror or exc)]
    for entry in entries:
        if not entry.endswith(MANIFEST_SUFFIX) or entry.startswith("."):
            continue
        path = os.path.join(dest, entry)
        try:
            with open(path) as handle:
                data = parse_manifest(handle.read(), path)
        except (OSError, ManifestError) as exc:
            problems.append("%s ignored: %s" % (entry, exc))
            continue
        if database is not None and data["database"] != database:
            continue
        archive = os.path.join(dest, data["archive"])
        if not os.path.exists(archive):
            problems.append("%s: its archive %s is missing" % (entry, data["archive"]))
            continue
        data = dict(data, manifest_path=path, archive_path=archive)
        backups.append(data)
    backups.sort(key=lambda b: (b["created_epoch"], b["name"]), reverse=True)
    return backups, problems


def select_prune(backups, keep=None, keep_days=None, now=None):
    """Which backups retention removes. backups: newest first (as scan returns them).

    A backup is kept when it is one of the `keep` newest or younger than `keep_days`
    days (either rule keeps it); the newest backup is always kept. With neither
    rule set nothing is pruned.
    """
    if keep is None and keep_days is None:
        return []
    ordered = sorted(backups, key=lambda b: (b["created_epoch"], b["name"]), reverse=True)
    prune = []
    for index, backup in enumerate(ordered):
        if index == 0:
            continue
        kept_by_count = keep is not None and index < keep
        kept_by_age = keep_days is not None and now is not None and \
            (now - backup["created_epoch"]) < keep_days * 86400.0
        if not (kept_by_count or kept_by_age):
            prune.append(backup)
    return prune


def newest_fresh(backups, max_age_seconds, now):
    """The newest backup (backups: newest first) when it is younger than max_age_seconds, else None."""
    if backups and now - backups[0]["created_epoch"] < max_age_seconds:
        return backups[0]
    return None


def compare_counts(expected, actual):
    """Differences between two {table: rows} maps, as readable strings (empty when equal)."""
    diffs = []
    for table in sorted(set(expected) | set(actual)):
        if table not in actual:
            diffs.append("%s: missing after restore (expected %d rows)" % (table, expected[table]))
        elif table not in expected:
            diffs.append("%s: not in the backup's manifest (%d rows)" % (table, actual[table]))
        elif int(expected[table]) != int(actual[table]):
            diffs.append("%s: %d rows, expected %d" % (table, actual[table], expected[table]))
    return diffs


def public_manifest(backup):
    """A manifest as returned to the user: no per-file sums (can be long), no internal paths."""
    return dict((k, v) for k, v in backup.items() if k not in ("files", "manifest_path", "archive_path"))
