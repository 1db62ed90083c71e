# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_backup
short_description: Logical PostgreSQL backups with pg_dump - take, verify, prune and restore them
version_added: 0.1.0
description:
  - V(present) takes a backup of O(database) with C(pg_dump) in custom format (C(-Fc)) or directory format with
    parallel jobs (C(-Fd -j N)) under O(dest), unless the newest backup is younger than O(max_age), and then applies
    the retention rules O(keep) and O(keep_days).
  - The dump is written under a hidden temporary name and renamed to C(DATABASE-YYYYmmddTHHMMSSZ.dump) (or C(.dir))
    only when C(pg_dump) succeeded; its manifest C(NAME.manifest.json) (database, server and client versions, size,
    sha256, duration, format, per-table row counts, large objects) is written last, also by rename. A backup without a
    manifest is not complete, so it is never used, counted or pruned.
  - Row counts are taken in the very snapshot C(pg_dump) dumps (C(pg_export_snapshot()) and C(pg_dump --snapshot)),
    so a restore can be checked exactly even while the database is written to.
  - V(verified) recomputes the checksum, reads the archive with C(pg_restore --list) and, with O(restore_test=true),
    restores it into a scratch database, compares per-table row counts and large objects with the manifest, and
    drops the scratch database again.
  - V(restored) restores a backup (O(name), else the newest of O(database)) into O(target_database). The archive is
    verified first; it is restored into a new database which replaces the target only when C(pg_restore) succeeded
    and the row counts match, so a corrupt archive or a failed restore leaves the target as it was.
    An existing target is dropped (its connections terminated) only with O(force=true).
  - The password reaches C(pg_dump) and C(pg_restore) through a private 0600 passfile (C(PGPASSFILE)) that is removed
    afterwards; it is never on a command line and never in the result.
  - The client tools must be at least the server's major version (C(pg_dump)) or the archive's (C(pg_restore)); by
    default the module uses C(/usr/lib/postgresql/MAJOR/bin) matching the server when it exists.
author: dbstack.ha contributors (@dbstack)
extends_documentation_fragment:
  - dbstack.ha.postgres
options:
  state:
    description:
      - V(present) makes sure a recent enough backup exists (takes one unless O(max_age) says the newest is fresh)
        and applies retention.
      - V(verified) checks a backup (O(name), else the newest of O(database)).
      - V(restored) restores a backup into O(target_database).
    type: str
    choices: [present, verified, restored]
    default: present
  database:
    description:
      - The database to back up, or whose backups to verify or restore.
      - Defaults to the database of O(login_db) or of the O(dsn). Not needed with O(name).
    type: str
  dest:
    description:
      - Folder of the backups. Created (mode 0700) when missing with O(state=present).
      - Only files described by a pg_backup manifest are ever read as backups or removed; anything else in the
        folder is left alone.
    type: path
    required: true
  format:
    description:
      - V(custom) is one compressed file (C(pg_dump -Fc)); V(directory) is a folder dumped with O(jobs) parallel
        workers (C(pg_dump -Fd -j)), which is faster for databases with several large tables.
    type: str
    choices: [custom, directory]
    default: custom
  jobs:
    description:
      - Parallel jobs of C(pg_dump) (directory format only) and of C(pg_restore) (both formats).
    type: int
    default: 1
  compress:
    description:
      - Compression level 0-9 passed to C(pg_dump -Z). The C(pg_dump) default when not set.
    type: int
  max_age:
    description:
      - When the newest backup of O(database) is younger than this, take none (C(changed=false)); retention still
        applies. Seconds, or a number with a unit C(s), C(m), C(h), C(d) or C(w), for example V(26h).
      - Lets a scheduler run the task often and get a recovery point objective of O(max_age) plus the schedule's interval.
    type: str
  keep:
    description:
      - Retention by count - keep the O(keep) newest backups of O(database). With O(keep_days) too, a backup is kept
        when either rule keeps it. The newest backup is never removed.
    type: int
  keep_days:
    description:
      - Retention by age - keep backups of O(database) younger than this many days.
    type: int
  row_counts:
    description:
      - Count the rows of every table in the dump's snapshot (while C(pg_dump) runs) and store them in the manifest,
        for exact checks after a restore.
    type: bool
    default: true
  free_space_factor:
    description:
      - Before dumping, require free space in O(dest) of at least this times C(pg_database_size()). The dump is
        usually far smaller (no indexes, compressed), so V(1.0) is conservative. V(0) disables the check.
    type: float
    default: 1.0
  name:
    description:
      - Name of the backup to verify or restore, as returned in C(backup.name) (for example C(appdb-20261122T031000Z)).
        The newest backup of O(database) when not set.
    type: str
  restore_test:
    description:
      - With O(state=verified), also restore the backup into O(restore_test_database), compare row counts and large
        objects, and drop it again. Skipped in check mode.
    type: bool
    default: false
  restore_test_database:
    description:
      - Scratch database of the restore test. A database of that name is only replaced when a previous restore test
        made it (the module marks it with a comment); otherwise the module refuses.
    type: str
    default: dbstack_restore_test
  target_database:
    description:
      - Database that O(state=restored) creates or replaces. Required with O(state=restored).
    type: str
  target_owner:
    description:
      - Owner of the restored database; objects are created as this role (C(pg_restore --role)), so an application
        role owns its tables again after C(--no-owner). Defaults to the connecting user.
    type: str
  force:
    description:
      - Allow O(state=restored) to replace an existing O(target_database) (its connections are terminated).
    type: bool
    default: false
  maintenance_db:
    description:
      - Database to connect to for creating, renaming and dropping databases during a restore.
    type: str
    default: postgres
  pg_bin_dir:
    description:
      - Folder holding C(pg_dump) and C(pg_restore). By default C(/usr/lib/postgresql/MAJOR/bin) for the server's
        major version (Debian), else the newest such folder that is new enough, else the C(PATH).
    type: path
  lock_timeout:
    description:
      - Seconds to wait for another pg_backup run on the same O(dest) (a lock file, C(.dbstack-backup.lock)) before failing.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
    description: Reports whether it would take a backup, what retention would prune, or what a restore would replace;
      verification (checksum, C(pg_restore --list)) still runs because it only reads; nothing is written.
  diff_mode:
    support: none
    description: Backups are archives, not text state to show as a diff.
  idempotent:
    support: partial
    description: With O(max_age), a run while the newest backup is fresh reports C(changed=false). Without it each
      run takes a new backup. V(verified) never changes anything; V(restored) always restores when asked to.
notes:
  - Run it on the PostgreSQL host over the local socket (C(become_user=postgres)) or anywhere that reaches the server,
    for example a backup host and a managed database through O(dsn) with C(sslmode=verify-full).
  - V(restored) needs room for a second copy of the database while it restores, and restores with
    C(--no-owner --no-acl --exit-on-error); database-level settings (C(ALTER DATABASE ... SET)) are not part of the dump.
requirements:
  - pg_dump and pg_restore (PostgreSQL client tools) on the host that runs the module.
seealso:
  - name: pg_dump
    description: The PostgreSQL manual page of pg_dump.
    link: https://www.postgresql.org/docs/current/app-pgdump.html
"""

EXAMPLES = r"""
- name: Back up appdb at most once every 23 hours, keep 7 backups and at least the last 14 days
  dbstack.ha.pg_backup:
    database: appdb
    dest: /var/backups/dbstack/postgres
    login_unix_socket: /var/run/postgresql
    max_age: 23h
    keep: 7
    keep_days: 14
  become: true
  become_user: postgres
  register: backup

- name: A managed database, parallel directory dump, verify-full TLS
  dbstack.ha.pg_backup:
    dsn: "postgresql://backup@db.example.cloud:5432/appdb?sslmode=verify-full&sslrootcert=/etc/ssl/certs/rds-ca.pem"
    login_password: "{{ vault_backup_password }}"
    dest: /srv/backups/appdb
    format: directory
    jobs: 4

- name: Verify it, including a restore into a scratch database
  dbstack.ha.pg_backup:
    state: verified
    dest: /var/backups/dbstack/postgres
    name: "{{ backup.backup.name }}"
    restore_test: true
    login_unix_socket: /var/run/postgresql
  become: true
  become_user: postgres

- name: Restore the newest appdb backup over appdb (its connections are terminated)
  dbstack.ha.pg_backup:
    state: restored
    database: appdb
    dest: /var/backups/dbstack/postgres
    target_database: appdb
    target_owner: app
    force: true
    jobs: 2
    login_unix_socket: /var/run/postgresql
  become: true
  become_user: postgres
"""

RETURN = r"""
backup:
  description:
    - The manifest of the backup taken, found fresh, verified or restored (without per-file checksums).
  returned: when there is one
  type: dict
  sample:
    name: appdb-20261122T031000Z
    database: appdb
    format: custom
    archive: appdb-20261122T031000Z.dump
    created_at: "2026-11-22T03:10:00Z"
    created_epoch: 1795316200.1
    duration_seconds: 0.71
    size_bytes: 2871234
    sha256: 9f2c...
    server_version: "15.20"
    client_version: "15.20"
    tables: {"public.pgbench_accounts": 1000000}
    large_objects: 0
path:
  description: Full path of the backup's archive (file or folder).
  returned: when there is a backup
  type: str
  sample: /var/backups/dbstack/postgres/appdb-20261122T031000Z.dump
skipped:
  description: With O(state=present), true when no backup was taken because the newest is younger than O(max_age).
  returned: with O(state=present)
  type: bool
  sample: false
pruned:
  description: Names of the backups retention removed (or would remove, in check mode).
  returned: with O(state=present)
  type: list
  elements: str
  sample: [appdb-20261101T031000Z]
kept:
  description: Names of this database's backups left in O(dest) after retention, newest first.
  returned: with O(state=present)
  type: list
  elements: str
  sample: [appdb-20261122T031000Z, appdb-20261121T031000Z]
removed_partials:
  description: Leftovers of interrupted runs (hidden C(.dbstack-partial-*) entries) removed before dumping.
  returned: with O(state=present)
  type: list
  elements: str
  sample: []
verification:
  description: What O(state=verified) or O(state=restored) checked.
  returned: with O(state=verified) or O(state=restored)
  type: dict
  sample:
    checksum: ok
    toc_entries: 42
    restore_test: {"database": "dbstack_restore_test", "duration_seconds": 1.7, "tables": 4, "rows": 1000013,
                   "large_objects": 1, "compared_with": "manifest"}
restored:
  description: Whether O(state=restored) restored (true in check mode when it would).
  returned: with O(state=restored)
  type: bool
  sample: true
target_database:
  description: The database restored into.
  returned: with O(state=restored)
  type: str
  sample: appdb_copy
terminated_connections:
  description: Connections to the replaced database that were terminated.
  returned: with O(state=restored)
  type: int
  sample: 0
duration_seconds:
  description: Wall time of C(pg_dump) (V(present)) or C(pg_restore) and the swap (V(restored)).
  returned: when a dump or restore ran
  type: float
  sample: 0.7
actions:
  description: What the run did, or would do in check mode, in words.
  returned: always
  type: list
  elements: str
  sample: ["dump appdb to /var/backups/dbstack/postgres/appdb-20261122T031000Z.dump"]
"""

import errno
import fcntl
import json
import os
import shutil
import tempfile
import threading
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils.backup import (
    LOCK_NAME,
    PARTIAL_PREFIX,
    ManifestError,
    archive_name,
    archive_size,
    backup_name,
    build_manifest,
    check_dump_version,
    check_restore_version,
    checksum_archive,
    client_major,
    compare_counts,
    manifest_name,
    newest_fresh,
    parse_duration,
    parse_manifest,
    pgpass_line,
    public_manifest,
    scan,
    select_prune,
    utc_datetime,
    utc_iso,
    valid_database_name,
    version_text,
)
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    ConnectionParamsError,
    build_conninfo,
    connect,
    describe_target,
    ensure_psycopg,
    parse_dsn,
    postgres_common_argument_spec,
    postgres_mutually_exclusive,
    psycopg,
    redact,
    secrets_of,
)

RESTORE_MARKER = "dbstack.ha pg_backup scratch database"
APPLICATION_NAME = "dbstack.ha pg_backup"
TABLES_SQL = """
SELECT n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                   AND d.deptype = 'e')
 ORDER BY 1, 2
"""


class BackupError(Exception):
    """A failure to report with fail_json (message already free of secrets)."""

    def __init__(self, msg, **extra):
        super(BackupError, self).__init__(msg)
        self.msg = msg
        self.extra = extra


def table_counts(conn):
    """{schema.table: rows} of the user tables, and the number of large objects, in conn's snapshot."""
    sql = psycopg.sql
    counts = {}
    for schema, table in conn.execute(TABLES_SQL).fetchall():
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        counts["%s.%s" % (schema, table)] = int(conn.execute(query).fetchone()[0])
    large_objects = int(conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0])
    return counts, large_objects


def sequence_values(conn):
    try:
        rows = conn.execute("SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2").fetchall()
    except psycopg.Error:
        return None
    return dict(("%s.%s" % (r[0], r[1]), None if r[2] is None else int(r[2])) for r in rows)


class Backups(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.dest = os.path.abspath(self.params["dest"])
        self.actions = []
        self.secrets = secrets_of(self.params)
        self.lock_handle = None
        self.workdir = None
        for secret in self.secrets:
            module.no_log_values.add(secret)

    # -- helpers ------------------------------------------------------------
    def fail(self, msg, **extra):
        raise BackupError(redact(msg, self.secrets), **extra)

    def conninfo(self):
        try:
            info = build_conninfo(self.params)
        except ConnectionParamsError as exc:
            self.fail(str(exc))
        if info.get("password"):
            self.secrets.append(info["password"])
            self.module.no_log_values.add(info["password"])
        return info

    def default_database(self):
        if self.params.get("database"):
            return self.params["database"]
        if self.params.get("login_db"):
            return self.params["login_db"]
        if self.params.get("dsn"):
            try:
                return parse_dsn(self.params["dsn"]).get("dbname")
            except ConnectionParamsError as exc:
                self.fail(str(exc))
        return None

    def connect(self, dbname):
        conn, public = connect(self.module, dbname=dbname)
        return conn, public

    def private_dir(self):
        if self.workdir is None:
            base = getattr(self.module, "tmpdir", None)
            self.workdir = tempfile.mkdtemp(prefix="pg_backup-", dir=base)
            os.chmod(self.workdir, 0o700)
        return self.workdir

    def tool_env(self, info):
        """Environment additions for pg_dump / pg_restore: the password in a private 0600 passfile, never on argv."""
        if not info.get("password"):
            return {}
        # A PGPASSWORD inherited by this module would win over the passfile, and shows in /proc/PID/environ.
        os.environ.pop("PGPASSWORD", None)
        path = os.path.join(self.private_dir(), "pgpass")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(pgpass_line(info["password"]))
        return dict(PGPASSFILE=path)

    def tool_conninfo(self, info, dbname):
        """A libpq connection string for the tools' --dbname, without the password."""
        args = dict((k, v) for k, v in info.items() if k not in ("password", "passfile"))
        args["dbname"] = dbname
        args.setdefault("application_name", APPLICATION_NAME)
        return psycopg.conninfo.make_conninfo(**args)

    def find_tool(self, name, major):
        bin_dir = self.params.get("pg_bin_dir")
        if bin_dir:
            path = os.path.join(bin_dir, name)
            if not os.access(path, os.X_OK):
                self.fail("pg_bin_dir=%s has no executable %s" % (bin_dir, name))
            return path
        candidates = []
        if major:
            candidates.append("/usr/lib/postgresql/%d/bin/%s" % (major, name))
        try:
            versions = sorted((int(v) for v in os.listdir("/usr/lib/postgresql") if v.isdigit()), reverse=True)
        except OSError:
            versions = []
        candidates.extend("/usr/lib/postgresql/%d/bin/%s" % (v, name) for v in versions if not major or v >= major)
        for path in candidates:
            if os.access(path, os.X_OK):
                return path
        path = self.module.get_bin_path(name)
        if not path:
            self.fail("%s not found (looked in /usr/lib/postgresql/*/bin and the PATH): install the PostgreSQL client "
                      "tools (Debian: postgresql-client-%s) or set pg_bin_dir" % (name, major or "MAJOR"))
        return path

    def tool_version(self, path):
        rc, out, err = self.module.run_command([path, "--version"])
        if rc != 0:
            self.fail("%s --version failed (rc=%d): %s" % (path, rc, (err or out).strip()))
        return client_major(out), out.strip()

    def run_tool(self, argv, info):
        """Run pg_dump / pg_restore to completion; (rc, stderr without secrets)."""
        rc, _out, err = self.module.run_command(argv, environ_update=self.tool_env(info))
        return rc, redact((err or "").strip(), self.secrets)

    # -- the folder -------------------------------------------------------------
    def prepare_dest(self, create):
        dest = self.dest
        if os.path.exists(dest) and not os.path.isdir(dest):
            self.fail("dest %s exists and is not a directory" % dest)
        if not os.path.exists(dest):
            if not create:
                self.fail("dest %s does not exist" % dest)
            if self.module.check_mode:
                self.actions.append("create %s (mode 0700)" % dest)
                return False
            try:
                os.makedirs(dest, 0o700)
            except OSError as exc:
                self.fail("dest %s cannot be created: %s (running as uid %d)" % (dest, exc.strerror or exc, os.geteuid()))
            self.actions.append("created %s" % dest)
        if create and not self.module.check_mode:
            try:
                fd, probe = tempfile.mkstemp(prefix=PARTIAL_PREFIX + "probe-", dir=dest)
                os.close(fd)
                os.unlink(probe)
            except OSError as exc:
                self.fail("dest %s is not writable: %s (running as uid %d)" % (dest, exc.strerror or exc, os.geteuid()))
        elif create and not os.access(dest, os.W_OK | os.X_OK):
            self.fail("dest %s is not writable by uid %d" % (dest, os.geteuid()))
        return True

    def lock(self, exclusive):
        path = os.path.join(self.dest, LOCK_NAME)
        try:
            if exclusive and not self.module.check_mode:
                self.lock_handle = open(path, "a")
            elif os.path.exists(path):
                self.lock_handle = open(path, "r")
            else:
                return
        except (IOError, OSError) as exc:
            self.fail("cannot open the lock file %s: %s" % (path, exc))
        mode = (fcntl.LOCK_EX if exclusive and not self.module.check_mode else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + self.params["lock_timeout"]
        while True:
            try:
                fcntl.flock(self.lock_handle.fileno(), mode)
                return
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    self.fail("another pg_backup run is using %s (lock %s held for more than lock_timeout=%ds)"
                              % (self.dest, path, self.params["lock_timeout"]))
                time.sleep(0.2)

    def backups(self, database):
        """Usable backups of database, newest first: manifest present, archive present, size as recorded."""
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

    def find_backup(self, database):
        name = self.params.get("name")
        if name:
            if "/" in name or name.startswith("."):
                self.fail("name %r is not a backup name" % name)
            path = os.path.join(self.dest, manifest_name(name))
            try:
                with open(path) as handle:
                    backup = parse_manifest(handle.read(), path)
            except (IOError, OSError) as exc:
                self.fail("backup %s not found in %s (%s)" % (name, self.dest, exc.strerror or exc))
            except ManifestError as exc:
                self.fail("the manifest of %s cannot be used: %s" % (name, exc))
            backup = dict(backup, manifest_path=path, archive_path=os.path.join(self.dest, backup["archive"]))
            if not os.path.exists(backup["archive_path"]):
                self.fail("backup %s has a manifest but its archive %s is missing" % (name, backup["archive_path"]))
            return backup
        if not database:
            self.fail("give name (a backup) or database (its newest backup)")
        found, problems = scan(self.dest, database)
        if not found:
            detail = (" (%s)" % "; ".join(problems)) if problems else ""
            self.fail("no backup of database %s in %s%s" % (database, self.dest, detail))
        return found[0]

    def remove_partials(self):
        removed = []
        for entry in sorted(os.listdir(self.dest)):
            if entry.startswith(PARTIAL_PREFIX):
                path = os.path.join(self.dest, entry)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
                removed.append(entry)
        return removed

    @staticmethod
    def fsync_path(path):
        """fsync one file or directory (a directory: so that renames and new entries in it are durable)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def fsync_tree(self, path):
        if os.path.isdir(path):
            for root, _dirs, files in os.walk(path):
                for name in files:
                    self.fsync_path(os.path.join(root, name))
                self.fsync_path(root)
        else:
            self.fsync_path(path)

    def write_manifest(self, manifest):
        final = os.path.join(self.dest, manifest_name(manifest["name"]))
        fd, tmp = tempfile.mkstemp(prefix=PARTIAL_PREFIX, suffix=".manifest", dir=self.dest)
        with os.fdopen(fd, "w") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.rename(tmp, final)
        self.fsync_path(self.dest)
        return final

    def delete_backup(self, backup):
        """Archive first (renamed out of sight, so it stops counting), then its manifest."""
        hidden = os.path.join(self.dest, PARTIAL_PREFIX + backup["archive"])
        os.rename(backup["archive_path"], hidden)
        os.unlink(backup["manifest_path"])
        if os.path.isdir(hidden):
            shutil.rmtree(hidden)
        else:
            os.unlink(hidden)

    # -- state=present -------------------------------------------------------------
    def present(self):
        params = self.params
        database = self.default_database()
        if not database:
            self.fail("give database (or a login_db / dsn naming one) to back up")
        if not valid_database_name(database):
            self.fail("database %r is not a usable database name" % database)
        try:
            max_age = parse_duration(params.get("max_age"))
        except ValueError as exc:
            self.fail("max_age: %s" % exc)
        result = dict(changed=False, skipped=False, pruned=[], kept=[], removed_partials=[], actions=self.actions)

        exists = self.prepare_dest(create=True)
        if exists:
            self.lock(exclusive=True)
        usable, problems = self.backups(database) if exists else ([], [])
        for problem in problems:
            self.module.warn("pg_backup %s: %s" % (self.dest, problem))
        now = time.time()

        fresh = newest_fresh(usable, max_age, now) if max_age else None
        if fresh:
            result["skipped"] = True
            result["backup"] = public_manifest(fresh)
            result["path"] = fresh["archive_path"]
            self.actions.append("newest backup %s is %.0f s old, younger than max_age=%s: no new backup"
                                % (fresh["name"], now - fresh["created_epoch"], params["max_age"]))
        else:
            new = self.dump(database, usable, exists)
            if new is not None:
                usable.insert(0, new)
                result["backup"] = public_manifest(new)
                result["path"] = new["archive_path"]
                result["duration_seconds"] = new["duration_seconds"]
            else:
                result["path"] = os.path.join(self.dest, "%s-<timestamp>%s" % (database, archive_name("", params["format"])))
            result["changed"] = True
            result["removed_partials"] = self.removed_partials

        # Retention: only our backups of this database; the one just made (or about to be) counts too.
        candidates = usable
        if self.module.check_mode and not fresh:
            candidates = [dict(name="(new)", created_epoch=now)] + usable
        prune = select_prune(candidates, params.get("keep"), params.get("keep_days"), now)
        for backup in prune:
            if self.module.check_mode:
                self.actions.append("prune %s" % backup["name"])
            else:
                self.delete_backup(backup)
                self.actions.append("pruned %s" % backup["name"])
            result["pruned"].append(backup["name"])
        if prune:
            result["changed"] = True
        result["kept"] = [b["name"] for b in candidates if b not in prune and b["name"] != "(new)"]
        return result

    def dump(self, database, usable, exists):
        params = self.params
        info = self.conninfo()
        conn, public = self.connect(database)
        self.removed_partials = []
        try:
            server_num = conn.info.server_version
            in_recovery = bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])
            db_size = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
            pg_dump = self.find_tool("pg_dump", server_num // 10000)
            client, client_text = self.tool_version(pg_dump)
            problem = check_dump_version(pg_dump, client, server_num)
            if problem:
                self.fail(problem)
            if exists and params["free_space_factor"] > 0:
                fs = os.statvfs(self.dest)
                free = fs.f_bavail * fs.f_frsize
                needed = int(db_size * params["free_space_factor"])
                if free < needed:
                    self.fail("not enough free space in %s: %d bytes free, the database %s is %d bytes and "
                              "free_space_factor=%s asks for %d. Free some space, prune older backups (keep, keep_days) "
                              "or lower free_space_factor" % (self.dest, free, database, db_size,
                                                              params["free_space_factor"], needed))
            taken = set(b["name"] for b in usable)
            started = time.time()
            name = backup_name(database, utc_datetime(started), taken)
            while os.path.exists(os.path.join(self.dest, manifest_name(name))) or \
                    os.path.exists(os.path.join(self.dest, archive_name(name, params["format"]))):
                taken.add(name)
                name = backup_name(database, utc_datetime(started), taken)
            final = os.path.join(self.dest, archive_name(name, params["format"]))
            self.actions.append("dump %s (%s, PostgreSQL %s%s) to %s" % (
                database, describe_target(public), version_text(server_num), ", standby" if in_recovery else "", final))
            if self.module.check_mode:
                return None

            self.removed_partials = self.remove_partials()
            partial = os.path.join(self.dest, PARTIAL_PREFIX + archive_name(name, params["format"]))
            argv = [pg_dump, "--dbname=" + self.tool_conninfo(info, database), "--no-password",
                    "--format=" + ("c" if params["format"] == "custom" else "d"), "--file=" + partial]
            if params["format"] == "directory" and params["jobs"] > 1:
                argv.append("--jobs=%d" % params["jobs"])
            if params.get("compress") is not None:
                argv.append("--compress=%d" % params["compress"])
            counts = large_objects = sequences = None
            start = time.monotonic()
            if params["row_counts"]:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
                outcome = {}
                with conn.transaction():
                    snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
                    argv.append("--snapshot=" + snapshot)
                    worker = threading.Thread(target=self.run_in_thread, args=(argv, info, outcome))
                    worker.start()
                    try:
                        counts, large_objects = table_counts(conn)
                        sequences = sequence_values(conn)
                        count_error = None
                    except psycopg.Error as exc:
                        count_error = str(exc).strip()
                    # The snapshot must stay exported until pg_dump has imported it: wait inside the transaction.
                    worker.join()
                if "result" not in outcome:
                    self.discard(partial)
                    self.fail("%s did not run to completion" % pg_dump)
                rc, err = outcome["result"]
                if count_error is not None:
                    self.discard(partial)
                    self.fail("counting rows of %s in the dump's snapshot failed: %s (row_counts=false skips the "
                              "counts)" % (database, count_error))
            else:
                rc, err = self.run_tool(argv, info)
            duration = time.monotonic() - start
            if rc != 0:
                self.discard(partial)
                self.fail("pg_dump of %s failed (rc=%d): %s" % (database, rc, err), rc=rc)

            self.fsync_tree(partial)
            digest, size, files = checksum_archive(partial)
            os.rename(partial, final)
            self.fsync_path(self.dest)
            manifest = build_manifest(
                name=name, database=database, format=params["format"], archive=os.path.basename(final),
                created_epoch=round(started, 3), created_at=utc_iso(started),
                finished_at=utc_iso(time.time()), duration_seconds=round(duration, 3),
                size_bytes=size, sha256=digest, files=files if params["format"] == "directory" else None,
                jobs=params["jobs"] if params["format"] == "directory" else 1, compress=params.get("compress"),
                server_version=version_text(server_num), server_version_num=server_num,
                client_version="%d.%d" % client, client_major=client[0], client_version_text=client_text,
                database_size_bytes=db_size, source=describe_target(public), from_standby=in_recovery,
                tables=counts, large_objects=large_objects, sequences=sequences,
            )
            manifest_path = self.write_manifest(manifest)
            return dict(manifest, manifest_path=manifest_path, archive_path=final)
        finally:
            conn.close()

    def run_in_thread(self, argv, info, outcome):
        outcome["result"] = self.run_tool(argv, info)

    def discard(self, partial):
        if os.path.isdir(partial):
            shutil.rmtree(partial, ignore_errors=True)
        elif os.path.exists(partial):
            os.unlink(partial)

    # -- verification ------------------------------------------------------------------
    def verify_archive(self, backup, pg_restore):
        """Checksum and pg_restore --list; fails (before anything is restored) on a corrupt archive."""
        digest, size, files = checksum_archive(backup["archive_path"])
        if size != backup["size_bytes"] or digest != backup["sha256"]:
            detail = ""
            if backup.get("files"):
                bad = sorted(set(k for k in set(files) | set(backup["files"]) if files.get(k) != backup["files"].get(k)))
                detail = "; files that differ: %s" % ", ".join(bad)
            self.fail("backup %s is corrupt or truncated: %s is %d bytes with sha256 %s, its manifest says %d bytes "
                      "with sha256 %s%s. Nothing was restored." % (
                          backup["name"], backup["archive_path"], size, digest, backup["size_bytes"],
                          backup["sha256"], detail), verification=dict(checksum="mismatch"))
        argv = [pg_restore, "--list", backup["archive_path"]]
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            self.fail("pg_restore --list cannot read backup %s (rc=%d): %s. Nothing was restored." % (
                backup["name"], rc, (err or out).strip()), verification=dict(checksum="ok", toc="unreadable"))
        entries = len([line for line in out.splitlines() if line and not line.startswith(";")])
        return dict(checksum="ok", toc_entries=entries)

    def restore_tool(self, backup):
        pg_restore = self.find_tool("pg_restore", backup.get("client_major"))
        client, _text = self.tool_version(pg_restore)
        problem = check_restore_version(pg_restore, client, backup.get("client_major"))
        if problem:
            self.fail(problem)
        return pg_restore

    def pg_restore(self, pg_restore, backup, info, dbname, role=None):
        argv = [pg_restore, "--dbname=" + self.tool_conninfo(info, dbname), "--no-password", "--no-owner",
                "--no-acl", "--exit-on-error"]
        if self.params["jobs"] > 1:
            argv.append("--jobs=%d" % self.params["jobs"])
        if role:
            argv.append("--role=" + role)
        argv.append(backup["archive_path"])
        start = time.monotonic()
        rc, err = self.run_tool(argv, info)
        return rc, err, time.monotonic() - start

    def expected_counts(self, backup):
        if backup.get("tables") is not None:
            return backup["tables"], backup.get("large_objects"), "manifest"
        conn, _public = self.connect(backup["database"])
        try:
            counts, large_objects = table_counts(conn)
        finally:
            conn.close()
        return counts, large_objects, "source database (the manifest has no row counts)"

    def check_counts(self, backup, dbname):
        expected, expected_lo, source = self.expected_counts(backup)
        conn, _public = self.connect(dbname)
        try:
            actual, actual_lo = table_counts(conn)
        finally:
            conn.close()
        diffs = compare_counts(expected, actual)
        if expected_lo is not None and expected_lo != actual_lo:
            diffs.append("large objects: %d, expected %d" % (actual_lo, expected_lo))
        return dict(tables=len(actual), rows=sum(actual.values()), large_objects=actual_lo, compared_with=source), diffs

    def database_exists(self, conn, name):
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    def is_scratch(self, conn, name):
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (name,)).fetchone()
        return bool(row) and row[0] == RESTORE_MARKER

    def drop_database(self, conn, name):
        """Terminate its sessions and drop it; returns how many sessions were terminated."""
        sql = psycopg.sql
        terminated = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,)).fetchone()[0]
        if conn.info.server_version >= 130000:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        else:
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                         "AND pid <> pg_backend_pid()", (name,))
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
        return int(terminated or 0)

    def create_scratch(self, conn, name, owner=None):
        sql = psycopg.sql
        if self.database_exists(conn, name):
            if not self.is_scratch(conn, name):
                self.fail("database %s exists and was not made by pg_backup: refusing to drop it. Choose another "
                          "scratch name or drop it yourself" % name)
            self.drop_database(conn, name)
        query = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
        if owner:
            query = sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(sql.Identifier(name),
                                                                                     sql.Identifier(owner))
        conn.execute(query)
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(RESTORE_MARKER)))

    def verified(self):
        database = self.default_database() if not self.params.get("name") else None
        if not os.path.isdir(self.dest):
            self.fail("dest %s does not exist or is not a directory" % self.dest)
        self.lock(exclusive=False)
        backup = self.find_backup(database)
        pg_restore = self.restore_tool(backup)
        verification = self.verify_archive(backup, pg_restore)
        self.actions.append("checked sha256 and pg_restore --list of %s" % backup["name"])
        result = dict(changed=False, backup=public_manifest(backup), path=backup["archive_path"],
                      verification=verification, actions=self.actions)
        if not self.params["restore_test"]:
            return result
        scratch = self.params["restore_test_database"]
        if self.module.check_mode:
            self.actions.append("would restore %s into scratch database %s, compare row counts and drop it"
                                % (backup["name"], scratch))
            return result
        info = self.conninfo()
        conn, _public = self.connect(self.params["maintenance_db"])
        try:
            self.create_scratch(conn, scratch)
            try:
                rc, err, duration = self.pg_restore(pg_restore, backup, info, scratch)
                if rc != 0:
                    self.fail("restore test of %s into %s failed (rc=%d): %s" % (backup["name"], scratch, rc, err),
                              verification=verification)
                summary, diffs = self.check_counts(backup, scratch)
            finally:
                self.drop_database(conn, scratch)
        finally:
            conn.close()
        summary.update(database=scratch, duration_seconds=round(duration, 3))
        verification["restore_test"] = summary
        self.actions.append("restored %s into %s in %.2f s, compared %d tables, dropped it"
                            % (backup["name"], scratch, duration, summary["tables"]))
        if diffs:
            self.fail("restore test of %s: row counts differ from the %s: %s" % (
                backup["name"], summary["compared_with"], "; ".join(diffs)), verification=verification)
        return result

    # -- state=restored -------------------------------------------------------------------
    def restored(self):
        params = self.params
        target = params["target_database"]
        if not valid_database_name(target) or target in ("template0", "template1"):
            self.fail("target_database %r cannot be restored into" % target)
        if target == params["maintenance_db"]:
            self.fail("target_database %s is the maintenance_db this module connects to; choose another "
                      "maintenance_db to replace it" % target)
        database = self.default_database() if not params.get("name") else None
        if not os.path.isdir(self.dest):
            self.fail("dest %s does not exist or is not a directory" % self.dest)
        self.lock(exclusive=False)
        backup = self.find_backup(database)
        pg_restore = self.restore_tool(backup)
        result = dict(changed=False, restored=False, target_database=target, terminated_connections=0,
                      backup=public_manifest(backup), path=backup["archive_path"], actions=self.actions)
        result["verification"] = self.verify_archive(backup, pg_restore)
        info = self.conninfo()
        conn, _public = self.connect(params["maintenance_db"])
        try:
            exists = self.database_exists(conn, target)
            if exists and not params["force"]:
                self.fail("database %s exists: refusing to replace it with backup %s. Set force=true to drop it "
                          "(its connections are terminated) and restore" % (target, backup["name"]), **result)
            owner = params.get("target_owner")
            if owner and conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone() is None:
                self.fail("target_owner %s is not a role on the server" % owner, **result)
            verb = "replace" if exists else "create"
            result["changed"] = True
            result["restored"] = True
            if self.module.check_mode:
                self.actions.append("would %s database %s with backup %s (%s)%s" % (
                    verb, target, backup["name"], backup["created_at"],
                    ", terminating its connections" if exists else ""))
                return result
            staging = (target[:40] + "_dbstack_restoring")
            start = time.monotonic()
            self.create_scratch(conn, staging, owner)
            untouched = dict(result)
            untouched.update(changed=False, restored=False)
            try:
                rc, err, _duration = self.pg_restore(pg_restore, backup, info, staging, role=owner)
                if rc != 0:
                    self.fail("pg_restore of %s failed (rc=%d): %s. Database %s was not touched."
                              % (backup["name"], rc, err, target), **untouched)
                summary, diffs = self.check_counts(backup, staging)
                if diffs:
                    self.fail("restored copy of %s differs from its %s: %s. Database %s was not touched." % (
                        backup["name"], summary["compared_with"], "; ".join(diffs), target),
                        **untouched)
            except BaseException:  # also a psycopg error, or fail_json's SystemExit: never leave the copy behind
                self.drop_database(conn, staging)
                raise
            sql = psycopg.sql
            if exists:
                result["terminated_connections"] = self.drop_database(conn, target)
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(staging), sql.Identifier(target)))
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS NULL").format(sql.Identifier(target)))
            result["duration_seconds"] = round(time.monotonic() - start, 3)
            result["verification"]["rows"] = summary
            self.actions.append("%s database %s with backup %s in %.2f s" % (
                "replaced" if exists else "created", target, backup["name"], result["duration_seconds"]))
        finally:
            conn.close()
        return result

    def close(self):
        if self.lock_handle is not None:
            self.lock_handle.close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def main():
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(
        state=dict(type="str", choices=["present", "verified", "restored"], default="present"),
        database=dict(type="str"),
        dest=dict(type="path", required=True),
        format=dict(type="str", choices=["custom", "directory"], default="custom"),
        jobs=dict(type="int", default=1),
        compress=dict(type="int"),
        max_age=dict(type="str"),
        keep=dict(type="int"),
        keep_days=dict(type="int"),
        row_counts=dict(type="bool", default=True),
        free_space_factor=dict(type="float", default=1.0),
        name=dict(type="str"),
        restore_test=dict(type="bool", default=False),
        restore_test_database=dict(type="str", default="dbstack_restore_test"),
        target_database=dict(type="str"),
        target_owner=dict(type="str"),
        force=dict(type="bool", default=False),
        maintenance_db=dict(type="str", default="postgres"),
        pg_bin_dir=dict(type="path"),
        lock_timeout=dict(type="int", default=60),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=postgres_mutually_exclusive(),
                           required_if=[("state", "restored", ["target_database"])],
                           supports_check_mode=True)
    params = module.params
    for option, low in (("jobs", 1), ("lock_timeout", 0)):
        if params[option] < low:
            module.fail_json(msg="%s must be at least %d, got %d" % (option, low, params[option]))
    for option in ("keep", "keep_days"):
        if params[option] is not None and params[option] < 1:
            module.fail_json(msg="%s must be at least 1, got %d (leave it unset to keep everything)"
                                 % (option, params[option]))
    if params["compress"] is not None and not 0 <= params["compress"] <= 9:
        module.fail_json(msg="compress must be between 0 and 9, got %d" % params["compress"])
    if params["free_space_factor"] < 0:
        module.fail_json(msg="free_space_factor must be 0 or more")
    if params["jobs"] > 1 and params["format"] == "custom" and params["state"] == "present":
        module.warn("jobs=%d only speeds up pg_dump with format=directory; custom format dumps with one job"
                    % params["jobs"])
    if not valid_database_name(params["restore_test_database"]) or \
            params["restore_test_database"] in ("postgres", "template0", "template1"):
        module.fail_json(msg="restore_test_database %r cannot be used as a scratch database"
                             % params["restore_test_database"])
    ensure_psycopg(module)

    backups = Backups(module)
    try:
        if params["state"] == "present":
            result = backups.present()
        elif params["state"] == "verified":
            result = backups.verified()
        else:
            result = backups.restored()
    except BackupError as exc:
        extra = dict(exc.extra)
        extra.setdefault("actions", backups.actions)
        module.fail_json(msg=exc.msg, **extra)
    except psycopg.Error as exc:
        module.fail_json(msg="PostgreSQL error during pg_backup state=%s: %s" % (
            params["state"], redact(str(exc).strip(), backups.secrets)), actions=backups.actions)
    except (IOError, OSError) as exc:
        module.fail_json(msg="pg_backup state=%s: %s: %s" % (
            params["state"], getattr(exc, "filename", None) or backups.dest, exc.strerror or exc),
            actions=backups.actions)
    finally:
        backups.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
