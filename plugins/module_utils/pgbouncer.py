# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared access to the PgBouncer admin console for dbstack.ha modules.

The admin console is the virtual database ``pgbouncer``. It only understands
the simple query protocol and has no transactions, so every command is sent
with libpq's ``PQexec`` on an autocommit connection, never with bind
parameters or prepared statements.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import select
import time

from ansible_collections.dbstack.ha.plugins.module_utils.files import replace_file
from ansible_collections.dbstack.ha.plugins.module_utils.pgbouncer_config import database_map
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    ConnectionParamsError,
    build_conninfo,
    connect,
    libpq_connection_spec,
)

ADMIN_DB = "pgbouncer"
DEFAULT_PORT = 6432
DEFAULT_USER = "pgbouncer"

# Admin console commands never need quoting beyond a bare database name.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def pgbouncer_common_argument_spec():
    """Connection options for the admin console (same names as PostgreSQL's)."""
    spec = libpq_connection_spec()
    spec.update(
        login_port=dict(type="int", default=DEFAULT_PORT),
        login_user=dict(type="str", default=DEFAULT_USER),
    )
    return spec


def admin_params(params):
    """Module params -> params for postgres.build_conninfo, dbname forced."""
    merged = dict(params)
    merged["dsn"] = None
    merged["login_db"] = ADMIN_DB
    if not merged.get("login_host") and not merged.get("login_unix_socket"):
        merged["login_host"] = "127.0.0.1"
    return merged


def admin_conninfo(params):
    info = build_conninfo(admin_params(params))
    info["dbname"] = ADMIN_DB
    return info


class AdminConsole(object):
    """A thin wrapper over one admin-console connection."""

    def __init__(self, module, params=None):
        params = module.params if params is None else params
        self.module = module
        self.conn, self.target = connect(module, admin_params(params), autocommit=True, dbname=ADMIN_DB,
                                         service="the PgBouncer admin console")

    def command(self, sql):
        """Run one admin command with the simple query protocol.

        Returns a list of dicts (empty for commands without a result set).
        """
        pgconn = self.conn.pgconn
        return result_rows(pgconn.exec_(sql.encode("utf-8")), sql, pgconn)

    def show(self, what):
        """SHOW POOLS / CONFIG / DATABASES / VERSION ... as a list of dicts."""
        if not _SAFE_NAME.match(what):
            raise AdminCommandError("not a SHOW target: %r" % what)
        return self.command("SHOW %s" % what.upper())

    def version(self):
        rows = self.show("version")
        return rows[0].get("version") if rows else None

    def close(self):
        try:
            self.conn.close()
        except Exception:  # pylint: disable=broad-except
            pass


class AdminCommandError(Exception):
    pass


def result_rows(result, sql, pgconn=None):
    """One admin-console result as a list of dicts; AdminCommandError if PgBouncer refused it."""
    status = result.status
    # psycopg.pq.ExecStatus: COMMAND_OK=1, TUPLES_OK=2
    if status not in (1, 2):
        message = result.error_message or (pgconn.error_message if pgconn is not None else None) or b""
        raise AdminCommandError("PgBouncer rejected %r: %s" % (sql, message.decode("utf-8", "replace").strip()))
    rows = []
    if status == 2:
        names = [result.fname(i).decode("utf-8") for i in range(result.nfields)]
        for r in range(result.ntuples):
            row = {}
            for c, name in enumerate(names):
                value = result.get_value(r, c)
                row[name] = None if value is None else value.decode("utf-8", "replace")
            rows.append(row)
    return rows


def quote_db_name(name):
    """Validate a database name for PAUSE/RESUME/RECONNECT commands."""
    if not name or not _SAFE_NAME.match(name):
        raise ConnectionParamsError(
            "database name %r cannot be used on the PgBouncer admin console: use letters, digits, '_', '.' or '-'" % name
        )
    return name


POOL_FIELDS = ("cl_active", "cl_waiting", "sv_active", "sv_idle")


class PauseTimeout(Exception):
    pass


def wait_for_command(pgconn, sql, timeout, clock=time.monotonic, wait=select.select):
    """Wait for the command sent on pgconn (send_query) to finish, at most `timeout` seconds.

    Raises PauseTimeout when it is still running at the deadline (the caller must
    then RESUME on another connection: this one stays busy).
    """
    deadline = clock() + timeout
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            break
        remaining = deadline - clock()
        if remaining <= 0:
            raise PauseTimeout(sql)
        wait([pgconn.socket], [], [], min(remaining, 0.05))
    result = pgconn.get_result()
    while result is not None:
        result_rows(result, sql, pgconn)
        result = pgconn.get_result()


def pause(console, name, timeout):
    """PAUSE one database, waiting at most `timeout` seconds (PAUSE returns once its servers are released)."""
    pgconn = console.conn.pgconn
    sql = "PAUSE %s" % quote_db_name(name)
    pgconn.send_query(sql.encode("utf-8"))
    try:
        wait_for_command(pgconn, sql, timeout)
    except PauseTimeout:
        raise PauseTimeout(name)


def resume_all(module, names):
    """RESUME on a fresh admin connection: the one that sent PAUSE may still be busy."""
    if not names:
        return
    try:
        other = AdminConsole(module)
        for name in names:
            try:
                other.command("RESUME %s" % name)
            except AdminCommandError:
                pass  # "database is not paused"
        other.close()
    except Exception as exc:  # pylint: disable=broad-except
        module.warn("could not RESUME %s after a failure: %s - run RESUME on the admin console" % (", ".join(names), exc))


def repoint_targets(targets, changes, live):
    """Which databases a repoint must act on, and which of them to PAUSE.

    targets: {name: {host, port}} asked for; changes: entries the file rewrite
    changes (pgbouncer_config.repoint); live: SHOW DATABASES as {name: {host, port, ...}}.
    An entry the file already has right but PgBouncer has not loaded is stale and
    needs the RELOAD too; one PgBouncer does not know yet cannot be paused.
    Returns (names to act on, names to pause), both sorted.
    """
    act = set(changes)
    for name, target in targets.items():
        entry = live.get(name)
        if entry is None:
            act.add(name)
        elif entry.get("host") != target["host"] or (target.get("port") and str(entry.get("port")) != str(target["port"])):
            act.add(name)
    return sorted(act), sorted(name for name in act if name in live)


def rewrite_problem(path, euid=None):
    """Why write_atomically(path) cannot work for this process (None when it can): checked before any PAUSE."""
    euid = os.geteuid() if euid is None else euid
    directory = os.path.dirname(path) or "."
    try:
        st = os.stat(path)
    except OSError as exc:
        return "cannot read %s: %s" % (path, exc.strerror)
    if euid != 0 and st.st_uid != euid:
        return ("%s belongs to uid %d: only root can write a new file that keeps its owner - run the task with "
                "become: true" % (path, st.st_uid))
    if not os.access(directory, os.W_OK | os.X_OK):
        return ("cannot create a file in %s (the rewrite writes a temporary file there and renames it) - run the task "
                "with become: true" % directory)
    return None


def write_atomically(path, text):
    """Replace path with text: a temporary file in the same directory, fsync, rename, fsync the directory.

    The file keeps its owner, group and mode. Readers see the old or the new
    content, never a part; on any failure the original is untouched and the
    temporary file is removed.
    """
    st = os.stat(path)
    replace_file(path, text, st.st_mode & 0o7777, st.st_uid, st.st_gid)


def live_databases(console):
    """SHOW DATABASES as {name: {host, port, database, ...}} (the admin database left out)."""
    return database_map(console.show("databases"))


def pools_summary(rows):
    """SHOW POOLS rows -> {database: {cl_active, cl_waiting, sv_active, sv_idle}} summed over users."""
    summary = {}
    for row in rows:
        if row.get("database") == ADMIN_DB:
            continue
        entry = summary.setdefault(row["database"], dict((f, 0) for f in POOL_FIELDS))
        for field in POOL_FIELDS:
            try:
                entry[field] += int(row.get(field) or 0)
            except ValueError:
                pass
    return summary


def differences(before, after):
    """{key: {before, after}} of the keys whose value differs."""
    keys = set(before) | set(after)
    return dict((k, dict(before=before.get(k), after=after.get(k))) for k in sorted(keys) if before.get(k) != after.get(k))


def _int(value, default=0):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def expected_fd_use(config, databases, users):
    """PgBouncer's own worst case of open descriptors (what it logs at start as "max expected fd use").

    max_client_conn + 10, plus per database its pool size (pool_size, else default_pool_size) - once when the
    entry forces a user, else once per user PgBouncer knows. config: SHOW CONFIG as {key: value}; databases and
    users: SHOW DATABASES / SHOW USERS rows; the admin console's own database counts too, as PgBouncer counts it.
    """
    default_pool = _int(config.get("default_pool_size"), 20)
    user_count = len([u for u in users if u.get("name")])
    total = _int(config.get("max_client_conn")) + 10
    for row in databases:
        size = _int(row.get("pool_size"), -1)
        size = default_pool if size < 0 else size
        total += size if row.get("force_user") else size * user_count
    return total


def config_map(rows):
    """SHOW CONFIG rows -> {key: value}."""
    return dict((row.get("key"), row.get("value")) for row in rows if row.get("key"))


def read_pid(pidfile, proc="/proc"):
    """The PgBouncer process: the pid in PIDFILE when it names a running pgbouncer, else the only process whose
    command name is pgbouncer; None when there is none or more than one."""
    if pidfile:
        try:
            with open(pidfile) as handle:
                pid = _int(handle.read().strip(), None)
            if pid and _comm(proc, pid) == "pgbouncer":
                return pid
        except (IOError, OSError):
            pass
    found = []
    for name in os.listdir(proc):
        if name.isdigit() and _comm(proc, int(name)) == "pgbouncer":
            found.append(int(name))
    return found[0] if len(found) == 1 else None


def _comm(proc, pid):
    try:
        with open(os.path.join(proc, str(pid), "comm")) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def open_files_limit(pid, proc="/proc"):
    """The soft 'Max open files' limit of process PID (None when it cannot be read, or unlimited)."""
    try:
        with open(os.path.join(proc, str(pid), "limits")) as handle:
            for line in handle:
                if line.startswith("Max open files"):
                    return _int(line[len("Max open files"):].split()[0], None)
    except (IOError, OSError):
        pass
    return None


def open_files_count(pid, proc="/proc"):
    """How many descriptors process PID has open now (None when they cannot be listed)."""
    try:
        return len(os.listdir(os.path.join(proc, str(pid), "fd")))
    except (IOError, OSError):
        return None


# libpq's PQping answers (psycopg.pq.Ping).
PING_OK, PING_REJECT, PING_NO_RESPONSE, PING_NO_ATTEMPT = 0, 1, 2, 3
PING_MEANING = {
    PING_REJECT: "the server is up but refuses connections (starting up, shutting down or in crash recovery)",
    PING_NO_RESPONSE: "no PostgreSQL server answered",
    PING_NO_ATTEMPT: "libpq could not try (bad host or port)",
}


def entry_target(pairs, name):
    """(host, port, dbname) a [databases] entry's key=value pairs point at, with libpq's defaults."""
    pairs = dict(pairs)
    return pairs.get("host") or "localhost", int(pairs.get("port") or 5432), pairs.get("dbname") or name


def target_problem(host, port, timeout, login=None, ping=None, connect=None):
    """Why HOST:PORT cannot take clients as a primary, or None when it can.

    Asks like pg_isready (libpq's PQping: a server accepting connections, whatever the credentials); with LOGIN
    (dict user, password, dbname) it also logs in and refuses a server in recovery. ping and connect are
    psycopg's, replaceable in tests.
    """
    conninfo = "host=%s port=%d connect_timeout=%d" % (host, port, max(int(timeout), 1))
    if ping is None or connect is None:
        import psycopg  # pylint: disable=import-outside-toplevel
        ping = ping or (lambda info: int(psycopg.pq.PGconn.ping(info.encode("utf-8"))))
        connect = connect or (lambda **kwargs: psycopg.connect(autocommit=True, **kwargs))
    answer = ping(conninfo)
    if answer != PING_OK:
        return PING_MEANING.get(answer, "PQping answered %s" % answer)
    if not login or not login.get("user"):
        return None
    try:
        conn = connect(host=host, port=port, user=login["user"], password=login.get("password") or None,
                       dbname=login.get("dbname") or "postgres", connect_timeout=max(int(timeout), 1))
    except Exception as exc:  # pylint: disable=broad-except
        return "could not log in as %s to check it is not a standby: %s" % (login["user"], str(exc).strip())
    try:
        in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
    finally:
        conn.close()
    return "it is a standby (in recovery), not a primary" if in_recovery else None
