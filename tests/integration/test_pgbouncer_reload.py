# -*- coding: utf-8 -*-
"""dbstack.ha.pgbouncer_reload against a real PgBouncer in front of two real PostgreSQL servers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import tempfile
import threading
import time

import psycopg
import pytest

from ansible_collections.dbstack.ha.tests.integration.runner import run_module
from ansible_collections.dbstack.ha.tests.integration.servers import PostgresNode, RunAs, free_port, make_pki, wait_port

SUPER = "bouncer-Super-Pw-1"
APP = "bouncer-App-Pw-2"
ADMIN = "bouncer-Admin-Pw-3"


class Bouncer(object):
    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="dbstack-pgb-")
        self.runas = RunAs()
        os.chmod(self.base, 0o755)
        self.runas.chown(self.base)
        pki = self.pki = make_pki(self.base)
        for path in pki.values():
            self.runas.chown(path)
        self.a = PostgresNode(self.base, "a", self.runas, pki, SUPER).init_primary().start()
        self.b = PostgresNode(self.base, "b", self.runas, pki, SUPER).init_primary().start()
        self.a.psql("CREATE ROLE app LOGIN PASSWORD '%s'" % APP)
        verifier = self.a.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
        # Same SCRAM secret on both servers, so PgBouncer can log in to either with it.
        self.b.psql("CREATE ROLE app LOGIN PASSWORD '%s'" % verifier)
        for node in (self.a, self.b):
            node.psql("CREATE DATABASE appdb OWNER app")
        self.port = free_port()
        self.ini = os.path.join(self.base, "pgbouncer.ini")
        userlist = os.path.join(self.base, "userlist.txt")
        with open(userlist, "w") as handle:
            handle.write('"app" "%s"\n"pgbadmin" "%s"\n' % (verifier, ADMIN))
        self.listen_ini = os.path.join(self.base, "listen.ini")
        with open(self.listen_ini, "w") as handle:  # read through %include, as the role's file is
            handle.write("listen_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir = %s\n" % (self.port, self.base))
        with open(self.ini, "w") as handle:
            handle.write(self.config(default_pool_size=5))
        for path in (userlist, self.ini, self.listen_ini):
            os.chmod(path, 0o640)
            self.runas.chown(path)
        self.log = open(os.path.join(self.base, "pgbouncer.out"), "ab")
        self.proc = subprocess.Popen(["pgbouncer", self.ini], stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.base, **self.runas.popen_kwargs())
        wait_port(self.port, proc=self.proc, log=os.path.join(self.base, "pgbouncer.out"))

    def config(self, default_pool_size, extra_databases=(), extra_settings=()):
        return "\n".join([
            ";; test PgBouncer",
            "[databases]",
            "appdb = host=127.0.0.1 port=%d dbname=appdb" % self.a.port,
            "other = host=127.0.0.1 port=%d dbname=postgres" % self.a.port,
        ] + list(extra_databases) + [
            "",
            "[pgbouncer]",
            "%%include %s" % self.listen_ini,
            "auth_type = scram-sha-256",
            "auth_file = %s" % os.path.join(self.base, "userlist.txt"),
            "admin_users = pgbadmin",
            "pool_mode = transaction",
            "default_pool_size = %d" % default_pool_size,
            "logfile = %s" % os.path.join(self.base, "pgbouncer.log"),
            "pidfile = %s" % os.path.join(self.base, "pgbouncer.pid"),
        ] + list(extra_settings) + [""])

    def write_config(self, default_pool_size, **kwargs):
        with open(self.ini, "w") as handle:
            handle.write(self.config(default_pool_size, **kwargs))

    def client(self):
        return psycopg.connect(host="127.0.0.1", port=self.port, dbname="appdb", user="app", password=APP,
                               autocommit=True, prepare_threshold=None)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()
        self.a.stop()
        self.b.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def bouncer():
    pgb = Bouncer()
    try:
        yield pgb
    finally:
        pgb.stop()


def admin(pgb, **extra):
    args = dict(login_host="127.0.0.1", login_port=pgb.port, login_user="pgbadmin", login_password=ADMIN,
                config_file=pgb.ini)
    args.update(extra)
    return args


def backend_port(pgb):
    with pgb.client() as conn:
        return conn.execute("SELECT inet_server_port()").fetchone()[0]


def reload(pgb, tmp_path, check=False, diff=False):
    return run_module("dbstack.ha.pgbouncer_reload", admin(pgb), tmp_path, check=check, diff=diff)


def show_config(pgb, key):
    with psycopg.connect(host="127.0.0.1", port=pgb.port, dbname="pgbouncer", user="pgbadmin", password=ADMIN,
                         autocommit=True, prepare_threshold=None) as conn:
        rows = conn.pgconn.exec_(b"SHOW CONFIG")
        values = dict((rows.get_value(i, 0).decode(), rows.get_value(i, 1)) for i in range(rows.ntuples))
    return values[key].decode() if values[key] is not None else None


def test_info_reads_pools_waiting_clients_and_descriptors(bouncer, tmp_path):
    # Runs first, while PgBouncer still runs the configuration it started with: its own start-up estimate in the
    # log must be what the module computes.
    with open(os.path.join(bouncer.base, "pgbouncer.log")) as handle:
        logged = [int(line.rsplit(" ", 1)[1]) for line in handle if "max expected fd use" in line][-1]
    args = dict(login_host="127.0.0.1", login_port=bouncer.port, login_user="pgbadmin", login_password=ADMIN,
                sections=["pools", "config", "version"])
    _out, bad = run_module("dbstack.ha.pgbouncer_info", dict(args, sections=["pool"]), tmp_path, expect_rc=2)
    assert bad["failed"] and "sections" in bad["msg"] and "pools" in bad["msg"]
    console = psycopg.connect(host="127.0.0.1", port=bouncer.port, dbname="pgbouncer", user="pgbadmin",
                              password=ADMIN, autocommit=True, prepare_threshold=None)
    held = []
    try:
        with bouncer.client() as conn:
            conn.execute("SELECT 1")
            console.pgconn.exec_(b"PAUSE appdb")
            # A client whose query waits behind the PAUSE: a waiting client, its wait growing.
            waiter = threading.Thread(target=lambda: held.append(bouncer.client().execute("SELECT 1").fetchone()))
            waiter.start()
            time.sleep(1.5)
            _out, result = run_module("dbstack.ha.pgbouncer_info", args, tmp_path, check=True)
    finally:
        console.pgconn.exec_(b"RESUME appdb")
        console.close()
    waiter.join(timeout=20)
    assert held == [(1,)]
    assert result["changed"] is False and result["version"].startswith("PgBouncer ")
    pool = result["pools"]["appdb/app"]
    assert pool["cl_waiting"] == 1 and pool["maxwait_seconds"] >= 1.0, pool
    assert "pgbouncer/pgbouncer" not in result["pools"]  # the admin console's own pool is left out
    assert sorted(result["show"]) == ["config", "pools", "version"]
    assert result["max_client_conn"] == 100
    assert result["expected_fd_use"] == logged
    assert result["pid"] == bouncer.proc.pid
    assert result["fd_limit"] > 0 and 0 < result["fd_open"] < result["fd_limit"]


def test_reload_check_change_unchanged(bouncer, tmp_path):
    # Nothing to do: check mode and a real RELOAD both say so, with an empty diff.
    output, result = reload(bouncer, tmp_path, check=True, diff=True)
    assert result["changed"] is False and result["reloaded"] is False
    assert result["config_changes"] == {} and result["database_changes"] == {}
    assert "+default_pool_size" not in output and "-default_pool_size" not in output
    _out, result = reload(bouncer, tmp_path)
    assert result["changed"] is False and result["reloaded"] is True
    assert not result.get("warnings")

    # A setting and a new database in the file: check mode predicts exactly what the RELOAD then does.
    bouncer.write_config(7, extra_databases=["newdb = host=127.0.0.1 port=%d dbname=postgres" % bouncer.b.port])
    output, check = reload(bouncer, tmp_path, check=True, diff=True)
    assert check["changed"] is True and check["reloaded"] is False
    assert check["config_changes"] == {"default_pool_size": {"before": "5", "after": "7"}}
    assert check["database_changes"]["appdb"]["before"]["pool_size"] == "5"
    assert check["database_changes"]["appdb"]["after"]["pool_size"] == "7"
    assert check["database_changes"]["newdb"]["before"] is None
    assert check["database_changes"]["newdb"]["after"]["port"] == str(bouncer.b.port)
    assert "-default_pool_size = 5" in output and "+default_pool_size = 7" in output
    assert "+newdb = host=127.0.0.1 port=%d database=postgres" % bouncer.b.port in output
    assert show_config(bouncer, "default_pool_size") == "5"  # check mode changed nothing
    output, result = reload(bouncer, tmp_path, diff=True)
    assert result["changed"] is True and result["reloaded"] is True
    assert result["config_changes"] == check["config_changes"]
    assert result["database_changes"] == check["database_changes"]
    assert "+default_pool_size = 7" in output
    assert show_config(bouncer, "default_pool_size") == "7"

    # Applied: unchanged in check mode and for real.
    _out, result = reload(bouncer, tmp_path, check=True)
    assert result["changed"] is False, result
    _out, result = reload(bouncer, tmp_path)
    assert result["changed"] is False and result["database_changes"] == {}

    # A removed database and a setting back to its default count as changes too.
    bouncer.write_config(5)
    _out, check = reload(bouncer, tmp_path, check=True)
    assert check["changed"] is True and check["database_changes"]["newdb"]["after"] is None
    _out, result = reload(bouncer, tmp_path)
    assert result["database_changes"] == check["database_changes"]
    assert result["config_changes"] == check["config_changes"]


def test_reload_settings_a_reload_cannot_apply(bouncer, tmp_path):
    # Only a restart applies listen_backlog: not a change of the RELOAD, but said so.
    bouncer.write_config(5, extra_settings=["listen_backlog = 64"])
    _out, check = reload(bouncer, tmp_path, check=True)
    assert check["changed"] is False
    assert check["restart_required"] == {"listen_backlog": {"before": "128", "after": "64"}}
    assert any("listen_backlog" in w and "restart" in w for w in check["warnings"])
    _out, result = reload(bouncer, tmp_path)
    assert result["changed"] is False and result["restart_required"] == check["restart_required"]
    # An invalid value stops PgBouncer reading the file, yet RELOAD succeeds on the console: warned.
    bouncer.write_config(5, extra_settings=["log_stats = yes"])
    _out, result = reload(bouncer, tmp_path)
    assert any("still does not run what its configuration file says" in w and "log_stats" in w
               for w in result["warnings"]), result
    bouncer.write_config(5)
    _out, result = reload(bouncer, tmp_path)
    assert not result.get("warnings")
    _out, result = reload(bouncer, tmp_path, check=True)
    assert result["changed"] is False


def test_repoint_check_mode_and_diff_change_nothing(bouncer, tmp_path):
    with open(bouncer.ini) as handle:
        before = handle.read()
    args = admin(bouncer, databases=[dict(name="appdb", host="127.0.0.1", port=bouncer.b.port)])
    output, result = run_module("dbstack.ha.pgbouncer_reload", args, tmp_path, check=True, diff=True)
    assert result["changed"] is True
    assert result["repointed"]["appdb"]["after"]["port"] == str(bouncer.b.port)
    assert "-appdb = host=127.0.0.1 port=%d dbname=appdb" % bouncer.a.port in output
    assert "+appdb = host=127.0.0.1 port=%d dbname=appdb" % bouncer.b.port in output
    with open(bouncer.ini) as handle:
        assert handle.read() == before
    assert backend_port(bouncer) == bouncer.a.port


def test_repoint_under_load_keeps_clients_working(bouncer, tmp_path):
    seen, errors = [], []
    stop = threading.Event()

    def worker():
        with bouncer.client() as conn:
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    with conn.transaction():
                        seen.append(conn.execute("SELECT inet_server_port(), pg_sleep(0.005)").fetchone()[0])
                except psycopg.Error as exc:
                    errors.append(str(exc))

    threads = [threading.Thread(target=worker) for _thread in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    args = admin(bouncer, databases=[dict(name="appdb", host="127.0.0.1", port=bouncer.b.port)])
    _out, result = run_module("dbstack.ha.pgbouncer_reload", args, tmp_path)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert result["changed"] is True and result["reloaded"] is True
    assert result["pause_ms"] > 0
    assert "appdb" in result["pools"]
    assert errors == []
    assert bouncer.a.port in seen and seen[-1] == bouncer.b.port
    # After the switch no transaction went back to the old server.
    first_b = seen.index(bouncer.b.port)
    assert bouncer.a.port not in seen[first_b + 8 * 2:]
    with open(bouncer.ini) as handle:
        text = handle.read()
    assert "appdb = host=127.0.0.1 port=%d dbname=appdb" % bouncer.b.port in text
    assert "other = host=127.0.0.1 port=%d dbname=postgres" % bouncer.a.port in text
    # Idempotent: already there, in check mode and for real.
    _out, again = run_module("dbstack.ha.pgbouncer_reload", args, tmp_path, check=True)
    assert again["changed"] is False and again["repointed"] == {}
    _out, again = run_module("dbstack.ha.pgbouncer_reload", args, tmp_path)
    assert again["changed"] is False and again["reloaded"] is False


def test_pause_timeout_resumes_and_changes_nothing(bouncer, tmp_path):
    with open(bouncer.ini) as handle:
        before = handle.read()
    blocker = bouncer.client()
    blocker.execute("BEGIN")
    blocker.execute("SELECT 1")  # holds a server connection in a transaction
    try:
        args = admin(bouncer, databases=[dict(name="appdb", host="127.0.0.1", port=bouncer.a.port)], pause_timeout=1)
        _out, result = run_module("dbstack.ha.pgbouncer_reload", args, tmp_path, expect_rc=2)
        assert "did not complete within pause_timeout=1" in result["msg"]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with open(bouncer.ini) as handle:
        assert handle.read() == before
    assert backend_port(bouncer) == bouncer.b.port  # resumed: new transactions run


def test_unknown_database_is_refused(bouncer, tmp_path):
    args = admin(bouncer, databases=[dict(name="nosuchdb", host="127.0.0.1", port=1)])
    _out, result = run_module("dbstack.ha.pgbouncer_reload", args, tmp_path, expect_rc=2)
    assert "nosuchdb not found in the [databases] section" in result["msg"]


def test_wrong_admin_password_and_unreachable_console(bouncer, tmp_path):
    output, result = run_module("dbstack.ha.pgbouncer_reload", admin(bouncer, login_password="Wrong-Admin-Pw-4"),
                                tmp_path, expect_rc=2)
    assert "user=pgbadmin dbname=pgbouncer" in result["msg"]
    assert "Wrong-Admin-Pw-4" not in output
    _out, result = run_module("dbstack.ha.pgbouncer_reload", admin(bouncer, login_port=1, connect_timeout=2),
                              tmp_path, expect_rc=2)
    assert "Unable to connect to the PgBouncer admin console (host=127.0.0.1 port=1 user=pgbadmin" in result["msg"]


def test_repoint_refuses_a_target_that_cannot_take_clients(bouncer, tmp_path):
    home = backend_port(bouncer)  # where appdb points now (earlier tests may have moved it)
    with open(bouncer.ini) as handle:
        before = handle.read()
    dead = free_port()  # nothing listens there
    args = admin(bouncer, databases=[dict(name="appdb", host="127.0.0.1", port=dead)], target_timeout=2)
    for check in (True, False):
        _out, result = run_module("dbstack.ha.pgbouncer_reload", args, tmp_path, expect_rc=2, check=check)
        assert "appdb -> 127.0.0.1:%d: no PostgreSQL server answered" % dead in result["msg"], result
        assert "Nothing was paused or changed" in result["msg"] and "force=true" in result["msg"]
        assert result["targets_checked"] == ["127.0.0.1:%d" % dead] and result["pause_ms"] == 0.0
    with open(bouncer.ini) as handle:
        assert handle.read() == before
    assert backend_port(bouncer) == home

    # A standby accepts connections: refused only when the module may log in and see it in recovery.
    standby = PostgresNode(bouncer.base, "c", bouncer.runas, bouncer.pki, SUPER).clone_from(bouncer.a).start()
    try:
        to_standby = admin(bouncer, databases=[dict(name="other", host="127.0.0.1", port=standby.port)],
                           target_user="postgres", target_password=SUPER)
        output, result = run_module("dbstack.ha.pgbouncer_reload", to_standby, tmp_path, expect_rc=2)
        assert "other -> 127.0.0.1:%d: it is a standby (in recovery), not a primary" % standby.port in result["msg"]
        assert SUPER not in output
        _out, result = run_module("dbstack.ha.pgbouncer_reload", dict(to_standby, target_password="wrong"),
                                  tmp_path, expect_rc=2)
        assert "could not log in as postgres to check it is not a standby" in result["msg"], result["msg"]
        # A primary passes the same check.
        _out, result = run_module("dbstack.ha.pgbouncer_reload", admin(
            bouncer, databases=[dict(name="other", host="127.0.0.1", port=bouncer.b.port)],
            target_user="postgres", target_password=SUPER), tmp_path, check=True)
        assert result["changed"] is True and result["targets_checked"] == ["127.0.0.1:%d" % bouncer.b.port]
    finally:
        standby.stop()
    with open(bouncer.ini) as handle:
        assert handle.read() == before

    # force=true repoints anyway (and the way back is checked again).
    _out, result = run_module("dbstack.ha.pgbouncer_reload", dict(args, force=True, pause=False), tmp_path)
    assert result["changed"] is True and "targets_checked" not in result
    _out, result = run_module("dbstack.ha.pgbouncer_reload", admin(
        bouncer, databases=[dict(name="appdb", host="127.0.0.1", port=home)]), tmp_path)
    assert result["changed"] is True and result["targets_checked"] == ["127.0.0.1:%d" % home]
    assert backend_port(bouncer) == home


def test_pause_and_resume(bouncer, tmp_path):
    def run(state, check=False, expect_rc=0, **extra):
        args = dict(login_host="127.0.0.1", login_port=bouncer.port, login_user="pgbadmin", login_password=ADMIN,
                    databases=["appdb"], state=state)
        args.update(extra)
        return run_module("dbstack.ha.pgbouncer_pause", args, tmp_path, check=check, expect_rc=expect_rc)[1]

    result = run("paused", check=True)
    assert result["changed"] is True and result["acted_on"] == ["appdb"] and result["paused_before"] == []
    assert run("resumed")["changed"] is False  # nothing paused: nothing to do

    result = run("paused")
    assert result["changed"] is True and result["paused"] == ["appdb"]
    assert run("paused")["changed"] is False
    answered = []
    waiter = threading.Thread(target=lambda: answered.append(bouncer.client().execute("SELECT 1").fetchone()))
    waiter.start()
    time.sleep(1.0)
    assert answered == []  # new queries wait while paused
    result = run("resumed")
    assert result["changed"] is True and result["paused"] == [] and result["paused_before"] == ["appdb"]
    waiter.join(timeout=20)
    assert answered == [(1,)]

    # A transaction that stays open keeps its server: PAUSE times out, and nothing stays paused.
    with bouncer.client() as busy:
        busy.execute("BEGIN")
        busy.execute("SELECT 1")
        result = run("paused", expect_rc=2, timeout=1)
        assert "did not complete within timeout=1 s" in result["msg"] and "were resumed" in result["msg"]
        busy.execute("ROLLBACK")
    assert backend_port(bouncer) in (bouncer.a.port, bouncer.b.port)  # answers at once: not paused
    result = run("paused", expect_rc=2, databases=["nope"])
    assert "nope are not in PgBouncer's [databases]" in result["msg"]


def test_repoint_resumes_what_another_task_paused(bouncer, tmp_path):
    pause = dict(login_host="127.0.0.1", login_port=bouncer.port, login_user="pgbadmin", login_password=ADMIN,
                 databases=["appdb"])
    run_module("dbstack.ha.pgbouncer_pause", dict(pause, state="paused"), tmp_path)
    to_b = admin(bouncer, databases=[dict(name="appdb", host="127.0.0.1", port=bouncer.b.port)], pause=False,
                 resume=True)
    _out, result = run_module("dbstack.ha.pgbouncer_reload", to_b, tmp_path)
    assert result["changed"] is True and result["resumed"] == ["appdb"] and result["pause_ms"] == 0.0
    assert backend_port(bouncer) == bouncer.b.port  # answers: resumed, and on b
    # Already pointing there and nothing paused: nothing to do.
    _out, result = run_module("dbstack.ha.pgbouncer_reload", to_b, tmp_path)
    assert result["changed"] is False and result["resumed"] == []
    # Paused again, already pointing there (a re-run after an interrupted switchover): only the RESUME.
    run_module("dbstack.ha.pgbouncer_pause", dict(pause, state="paused"), tmp_path)
    _out, result = run_module("dbstack.ha.pgbouncer_reload", to_b, tmp_path, check=True)
    assert result["changed"] is True and result["resumed"] == ["appdb"]
    _out, result = run_module("dbstack.ha.pgbouncer_reload", to_b, tmp_path)
    assert result["changed"] is True and result["resumed"] == ["appdb"] and result["repointed"] == {}
    run_module("dbstack.ha.pgbouncer_reload", admin(
        bouncer, databases=[dict(name="appdb", host="127.0.0.1", port=bouncer.a.port)]), tmp_path)
    assert backend_port(bouncer) == bouncer.a.port


def test_kill_clients_drops_a_client_stuck_on_the_old_server(bouncer, tmp_path):
    """A failover's repoint (pause false, kill_clients): a client mid-transaction on the old server is dropped
    instead of staying attached to it; a new connection lands on the new server; a re-run changes nothing."""
    old = backend_port(bouncer)
    new = bouncer.b.port if old == bouncer.a.port else bouncer.a.port
    stuck = bouncer.client()
    stuck.execute("BEGIN")
    assert stuck.execute("SELECT inet_server_port()").fetchone()[0] == old
    args = admin(bouncer, databases=[dict(name="appdb", host="127.0.0.1", port=new)], pause=False,
                 kill_clients=True)
    _out, result = run_module("dbstack.ha.pgbouncer_reload", args, tmp_path)
    assert result["changed"] is True and result["killed"] == ["appdb"]
    with pytest.raises(psycopg.OperationalError):
        stuck.execute("SELECT inet_server_port()")
    stuck.close()
    assert backend_port(bouncer) == new
    _out, again = run_module("dbstack.ha.pgbouncer_reload", args, tmp_path)
    assert again["changed"] is False and "killed" not in again
