# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The work of the pg_backup module: take, verify, prune and restore backups.

The module file only declares and checks its options and hands them to Backups.
The backup folder (lock, partial names, fsync, manifests) is backup_folder.py,
the client tool lookup pg_tools.py, the decisions (names, retention, manifest
checks, versions) backup.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import tempfile
import time

from ansible_collections.dbstack.ha.plugins.module_utils.backup import (
    archive_name,
    build_manifest,
    check_dump_version,
    check_restore_version,
    checksum_archive,
    compare_counts,
    newest_fresh,
    parse_duration,
    pgpass_line,
    public_manifest,
    select_prune,
    utc_datetime,
    utc_iso,
    valid_database_name,
    version_text,
)
from ansible_collections.dbstack.ha.plugins.module_utils.backup_folder import (
    BackupFolder,
    FolderError,
    Flusher,
    remove_path,
)
from ansible_collections.dbstack.ha.plugins.module_utils.pg_tools import ToolError, ToolVersion, find_pg_tool
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    ConnectionParamsError,
    build_conninfo,
    connect,
    describe_target,
    parse_dsn,
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
    """pg_backup's three states on one backup folder; fail() raises BackupError for the module to report."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.folder = BackupFolder(self.params["dest"])
        self.dest = self.folder.dest
        self.actions = []
        self.secrets = secrets_of(self.params)
        self.workdir = None
        self.removed_partials = []
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
        try:
            return find_pg_tool(name, major, bin_dir=self.params.get("pg_bin_dir"), which=self.module.get_bin_path)
        except ToolError as exc:
            self.fail(str(exc))

    def tool_version(self, version):
        """((major, minor), text) of a started ToolVersion."""
        try:
            return version.result()
        except ToolError as exc:
            self.fail(str(exc))

    def run_tool(self, argv, info):
        """Run pg_dump / pg_restore to completion; (rc, stderr without secrets)."""
        rc, _out, err = self.module.run_command(argv, environ_update=self.tool_env(info))
        return rc, redact((err or "").strip(), self.secrets)

    def start_tool(self, argv, info):
        """Start pg_dump / pg_restore without waiting; finish_tool() collects it. Its stderr goes to a private file."""
        extra = self.tool_env(info)  # first: it drops an inherited PGPASSWORD from os.environ
        env = dict(os.environ)
        env.update(extra)
        err = open(os.path.join(self.private_dir(), "stderr"), "w+b")
        try:
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    close_fds=True)
        except OSError as exc:
            err.close()
            self.fail("%s cannot run: %s" % (argv[0], exc.strerror or exc))
        return proc, err

    def finish_tool(self, started):
        """Wait for a start_tool() process; (rc, stderr without secrets)."""
        proc, err = started
        with err:
            rc = proc.wait()
            err.seek(0)
            text = err.read().decode("utf-8", "replace")
        return rc, redact(text.strip(), self.secrets)

    # -- the folder -------------------------------------------------------------
    def prepare_dest(self, create):
        try:
            exists, created = self.folder.prepare(create, self.module.check_mode)
        except FolderError as exc:
            self.fail(str(exc))
        if create and not exists:
            self.actions.append("create %s (mode 0700)" % self.dest)
        elif created:
            self.actions.append("created %s" % self.dest)
        return exists

    def lock(self, exclusive):
        try:
            self.folder.lock(exclusive and not self.module.check_mode, self.params["lock_timeout"])
        except FolderError as exc:
            self.fail(str(exc))

    def find_backup(self, database):
        try:
            if self.params.get("name"):
                return self.folder.find(self.params["name"])
            if not database:
                self.fail("give name (a backup) or database (its newest backup)")
            return self.folder.newest(database)
        except FolderError as exc:
            self.fail(str(exc))

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
        usable, problems = self.folder.usable(database) if exists else ([], [])
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
                self.folder.delete(backup)
                self.actions.append("pruned %s" % backup["name"])
            result["pruned"].append(backup["name"])
        if prune:
            result["changed"] = True
        result["kept"] = [b["name"] for b in candidates if b not in prune and b["name"] != "(new)"]
        return result

    def dump(self, database, usable, exists):
        """Take a backup of database into the folder; its manifest (with paths), or None in check mode.

        The order keeps the wall time close to a bare pg_dump's: pg_dump --version runs while we connect;
        pg_dump starts as soon as the snapshot is exported and the rows are counted in that snapshot while it
        dumps; the archive is written back to disk while pg_dump works (Flusher); the checksum is one read of
        the final archive, overlapping its last fsync (pg_dump -Fc rewrites its table of contents at the start
        of the file when it ends, so the bytes can only be hashed once pg_dump is done); one fsync of the
        folder makes the archive's and the manifest's renames durable.
        """
        params = self.params
        info = self.conninfo()
        # Start `pg_dump --version` of the likeliest pg_dump now, so it runs while we connect.
        try:
            guess = find_pg_tool("pg_dump", None, bin_dir=params.get("pg_bin_dir"), which=self.module.get_bin_path)
        except ToolError:
            guess = None
        version = ToolVersion(guess) if guess else None
        conn = None
        try:
            conn, public = self.connect(database)
            server_num = conn.info.server_version
            pg_dump = self.find_tool("pg_dump", server_num // 10000)
            if pg_dump != guess:
                if version is not None:
                    version.close()
                version = ToolVersion(pg_dump)
            in_recovery, db_size = conn.execute(
                "SELECT pg_is_in_recovery(), pg_database_size(current_database())").fetchone()
            in_recovery, db_size = bool(in_recovery), int(db_size)
            if exists and params["free_space_factor"] > 0:
                free = self.folder.free_bytes()
                needed = int(db_size * params["free_space_factor"])
                if free < needed:
                    self.fail("not enough free space in %s: %d bytes free, the database %s is %d bytes and "
                              "free_space_factor=%s asks for %d. Free some space, prune older backups (keep, keep_days) "
                              "or lower free_space_factor" % (self.dest, free, database, db_size,
                                                              params["free_space_factor"], needed))
            started = time.time()
            name = self.folder.new_name(database, utc_datetime(started), params["format"],
                                        set(b["name"] for b in usable))
            archive = archive_name(name, params["format"])
            self.actions.append("dump %s (%s, PostgreSQL %s%s) to %s" % (
                database, describe_target(public), version_text(server_num), ", standby" if in_recovery else "",
                self.folder.path(archive)))
            client, client_text = self.tool_version(version)
            problem = check_dump_version(pg_dump, client, server_num)
            if problem:
                self.fail(problem)
            if self.module.check_mode:
                return None

            self.removed_partials = self.folder.remove_partials()
            partial = self.folder.partial_path(archive)
            argv = [pg_dump, "--dbname=" + self.tool_conninfo(info, database), "--no-password",
                    "--format=" + ("c" if params["format"] == "custom" else "d"), "--file=" + partial]
            if params["format"] == "directory" and params["jobs"] > 1:
                argv.append("--jobs=%d" % params["jobs"])
            if params.get("compress") is not None:
                argv.append("--compress=%d" % params["compress"])
            if client[0] >= 10:
                argv.append("--no-sync")  # the Flusher syncs, while pg_dump works and while the archive is hashed
            counts = large_objects = sequences = None
            flusher = Flusher(partial)
            try:
                start = time.monotonic()
                if params["row_counts"]:
                    counts, large_objects, sequences, rc, err = self.dump_and_count(conn, argv, info, database,
                                                                                    pg_dump)
                else:
                    rc, err = self.finish_tool(self.start_tool(argv, info))
                duration = time.monotonic() - start
                if rc != 0:
                    self.fail("pg_dump of %s failed (rc=%d): %s" % (database, rc, err), rc=rc)
                digest, size, files = flusher.finish(lambda: checksum_archive(partial, jobs=params["jobs"]))
                manifest = build_manifest(
                    name=name, database=database, format=params["format"], archive=archive,
                    created_epoch=round(started, 3), created_at=utc_iso(started),
                    finished_at=utc_iso(time.time()), duration_seconds=round(duration, 3),
                    size_bytes=size, sha256=digest, files=files if params["format"] == "directory" else None,
                    jobs=params["jobs"] if params["format"] == "directory" else 1, compress=params.get("compress"),
                    server_version=version_text(server_num), server_version_num=server_num,
                    client_version="%d.%d" % client, client_major=client[0], client_version_text=client_text,
                    database_size_bytes=db_size, source=describe_target(public), from_standby=in_recovery,
                    tables=counts, large_objects=large_objects, sequences=sequences,
                )
                archive_path, manifest_path = self.folder.publish(partial, manifest, synced=True)
            except BaseException:
                flusher.abandon()
                remove_path(partial)
                raise
            return dict(manifest, manifest_path=manifest_path, archive_path=archive_path)
        finally:
            if version is not None:
                version.close()
            if conn is not None:
                conn.close()

    def dump_and_count(self, conn, argv, info, database, pg_dump):
        """Run pg_dump in a snapshot exported by conn and count the rows in that snapshot while it dumps.

        Returns (counts, large_objects, sequences, rc, stderr).
        """
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        count_error = None
        with conn.transaction():
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            started = self.start_tool(argv + ["--snapshot=" + snapshot], info)
            try:
                counts, large_objects = table_counts(conn)
                sequences = sequence_values(conn)
            except psycopg.Error as exc:
                count_error = str(exc).strip()
            # The snapshot must stay exported until pg_dump has imported it: wait inside the transaction.
            rc, err = self.finish_tool(started)
        if count_error is not None:
            self.fail("counting rows of %s in the dump's snapshot failed: %s (row_counts=false skips the "
                      "counts)" % (database, count_error))
        return counts, large_objects, sequences, rc, err

    # -- verification ------------------------------------------------------------------
    def verify_archive(self, backup, pg_restore):
        """Checksum and pg_restore --list; fails (before anything is restored) on a corrupt archive."""
        digest, size, files = checksum_archive(backup["archive_path"], jobs=self.params["jobs"])
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
        version = ToolVersion(pg_restore)
        try:
            client, _text = self.tool_version(version)
        finally:
            version.close()
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
        self.folder.unlock()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
