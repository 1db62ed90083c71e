# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.dbstack.ha.plugins.module_utils.pgbouncer import (
    PauseTimeout,
    admin_conninfo,
    config_map,
    differences,
    entry_target,
    expected_fd_use,
    open_files_count,
    open_files_limit,
    pgbouncer_common_argument_spec,
    pools_summary,
    quote_db_name,
    read_pid,
    repoint_targets,
    rewrite_problem,
    target_problem,
    wait_for_command,
    write_atomically,
)
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import ConnectionParamsError


def params(**kwargs):
    base = dict((name, opts.get("default")) for name, opts in pgbouncer_common_argument_spec().items())
    base.update(kwargs)
    return base


def test_admin_defaults():
    info = admin_conninfo(params())
    assert info["host"] == "127.0.0.1"
    assert info["port"] == 6432
    assert info["user"] == "pgbouncer"
    assert info["dbname"] == "pgbouncer"


def test_admin_socket():
    info = admin_conninfo(params(login_unix_socket="/var/run/postgresql"))
    assert info["host"] == "/var/run/postgresql"
    assert info["dbname"] == "pgbouncer"


def test_admin_password_is_no_log():
    assert pgbouncer_common_argument_spec()["login_password"]["no_log"] is True
    assert "dsn" not in pgbouncer_common_argument_spec()


@pytest.mark.parametrize("name", ["appdb", "app_db-2", "db.v1"])
def test_db_names_ok(name):
    assert quote_db_name(name) == name


@pytest.mark.parametrize("name", ["", "app;RELOAD", "a b", "x'y"])
def test_db_names_rejected(name):
    with pytest.raises(ConnectionParamsError, match="admin console"):
        quote_db_name(name)


def test_repoint_targets_acts_on_changed_stale_and_unknown_entries():
    targets = dict(appdb=dict(host="pg2", port=5432), reports=dict(host="pg2", port=None),
                   fresh=dict(host="pg2", port=None), done=dict(host="pg2", port=5432))
    live = dict(appdb=dict(host="pg1", port="5432"), reports=dict(host="pg1", port="5432"),
                done=dict(host="pg2", port="5432"), other=dict(host="pg1", port="5432"))
    # appdb: the file changes; reports: the file is right already but PgBouncer runs the old host (stale);
    # fresh: not loaded yet (cannot be paused); done: nothing to do.
    act, to_pause = repoint_targets(targets, {"appdb": {}}, live)
    assert act == ["appdb", "fresh", "reports"]
    assert to_pause == ["appdb", "reports"]


def test_repoint_targets_port_only_counts_when_given():
    live = dict(appdb=dict(host="pg2", port="6543"))
    assert repoint_targets(dict(appdb=dict(host="pg2", port=None)), {}, live) == ([], [])
    assert repoint_targets(dict(appdb=dict(host="pg2", port=5432)), {}, live) == (["appdb"], ["appdb"])


class FakeResult(object):
    status = 1  # COMMAND_OK


class SlowCommand(object):
    """A libpq connection whose command finishes after `busy_polls` polls."""

    socket = -1

    def __init__(self, busy_polls):
        self.busy_polls = busy_polls
        self.results = [FakeResult()]

    def consume_input(self):
        self.busy_polls -= 1

    def is_busy(self):
        return self.busy_polls > 0

    def get_result(self):
        return self.results.pop() if self.results else None


class Clock(object):
    def __init__(self):
        self.now = 100.0
        self.waits = []

    def __call__(self):
        return self.now

    def wait(self, _r, _w, _x, timeout):
        self.waits.append(timeout)
        self.now += timeout


def test_wait_for_command_returns_when_done_and_reads_every_result():
    clock = Clock()
    conn = SlowCommand(busy_polls=3)
    wait_for_command(conn, "PAUSE appdb", 1, clock=clock, wait=clock.wait)
    assert conn.results == [] and clock.waits == [0.05, 0.05]


def test_wait_for_command_times_out_at_the_deadline():
    clock = Clock()
    conn = SlowCommand(busy_polls=1000)
    with pytest.raises(PauseTimeout):
        wait_for_command(conn, "PAUSE appdb", 0.2, clock=clock, wait=clock.wait)
    assert clock.now == pytest.approx(100.2) and max(clock.waits) <= 0.05
    assert conn.results  # the result was not consumed: the caller resumes on another connection


def test_write_atomically_replaces_content_and_keeps_mode(tmp_path):
    path = tmp_path / "pgbouncer.ini"
    path.write_text("[databases]\nappdb = host=pg1\n")
    os.chmod(str(path), 0o640)
    inode = os.stat(str(path)).st_ino
    write_atomically(str(path), "[databases]\nappdb = host=pg2\n")
    assert path.read_text() == "[databases]\nappdb = host=pg2\n"
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o640
    assert os.stat(str(path)).st_ino != inode  # a new file renamed over the old one: readers never see a part
    assert sorted(os.listdir(str(tmp_path))) == ["pgbouncer.ini"]


def test_write_atomically_leaves_the_original_on_failure(tmp_path):
    path = tmp_path / "pgbouncer.ini"
    path.write_text("original\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(str(path), "\udcff not encodable")
    assert path.read_text() == "original\n"
    assert sorted(os.listdir(str(tmp_path))) == ["pgbouncer.ini"]


def test_write_atomically_needs_an_existing_file(tmp_path):
    with pytest.raises(OSError):
        write_atomically(str(tmp_path / "missing.ini"), "x")
    assert os.listdir(str(tmp_path)) == []


def test_pools_summary_sums_users_and_skips_the_admin_database():
    rows = [dict(database="appdb", user="app", cl_active="3", cl_waiting="1", sv_active="2", sv_idle="0"),
            dict(database="appdb", user="rep", cl_active="1", cl_waiting="0", sv_active="1", sv_idle="4"),
            dict(database="pgbouncer", user="pgbouncer", cl_active="1", cl_waiting="0", sv_active="0", sv_idle="0")]
    assert pools_summary(rows) == {"appdb": dict(cl_active=4, cl_waiting=1, sv_active=3, sv_idle=4)}


def test_differences():
    assert differences(dict(a=1, b=2), dict(a=1, b=3, c=4)) == {"b": dict(before=2, after=3),
                                                                "c": dict(before=None, after=4)}


def test_rewrite_problem_is_found_before_any_pause(tmp_path):
    path = tmp_path / "pgbouncer.ini"
    path.write_text("[databases]\n")
    owner = os.stat(str(path)).st_uid
    assert rewrite_problem(str(path)) is None
    assert "cannot read" in rewrite_problem(str(tmp_path / "missing.ini"))
    other = owner + 1 if owner else 1000
    assert "only root can write" in rewrite_problem(str(path), euid=other)
    assert rewrite_problem(str(path), euid=0) is None


def test_expected_fd_use_is_pgbouncers_own_worst_case():
    config = config_map([dict(key="max_client_conn", value="1000"), dict(key="default_pool_size", value="20")])
    databases = [dict(name="pgbouncer", pool_size="2", force_user="pgbouncer"),
                 dict(name="appdb", pool_size="50", force_user=""),
                 dict(name="other", pool_size="-1", force_user=None),
                 dict(name="forced", pool_size="5", force_user="app")]
    users = [dict(name="app"), dict(name="pgbouncer_stats")]
    # 1000 + 10, the admin console's 2 once (it forces its user), appdb 50 x 2 users, other the default 20 x 2
    # users, forced 5 once
    assert expected_fd_use(config, databases, users) == 1010 + 2 + 100 + 40 + 5


def fake_proc(tmp_path, pid, comm, limit="16384", fds=3):
    entry = tmp_path / str(pid)
    (entry / "fd").mkdir(parents=True)
    (entry / "comm").write_text(comm + "\n")
    (entry / "limits").write_text(
        "Limit                     Soft Limit           Hard Limit           Units\n"
        "Max processes             1000                 1000                 processes\n"
        "Max open files            %s                %s                files\n" % (limit, limit))
    for number in range(fds):
        (entry / "fd" / str(number)).write_text("")
    return str(tmp_path)


def test_read_pid_from_the_pidfile_or_the_only_pgbouncer(tmp_path):
    proc = fake_proc(tmp_path / "proc", 42, "pgbouncer")
    fake_proc(tmp_path / "proc", 7, "postgres")
    pidfile = tmp_path / "pgbouncer.pid"
    pidfile.write_text("42\n")
    assert read_pid(str(pidfile), proc=proc) == 42
    pidfile.write_text("7\n")  # stale: names another program
    assert read_pid(str(pidfile), proc=proc) == 42
    assert read_pid("", proc=proc) == 42
    fake_proc(tmp_path / "proc", 43, "pgbouncer")
    assert read_pid("", proc=proc) is None  # two: do not guess


def test_open_files_limit_and_count(tmp_path):
    proc = fake_proc(tmp_path, 42, "pgbouncer", limit="16384", fds=5)
    assert open_files_limit(42, proc=proc) == 16384
    assert open_files_count(42, proc=proc) == 5
    assert open_files_limit(99, proc=proc) is None and open_files_count(99, proc=proc) is None
    fake_proc(tmp_path, 44, "pgbouncer", limit="unlimited")
    assert open_files_limit(44, proc=proc) is None


class FakeConn(object):
    def __init__(self, in_recovery):
        self.in_recovery, self.closed = in_recovery, False

    def execute(self, sql):
        assert sql == "SELECT pg_is_in_recovery()"
        return self

    def fetchone(self):
        return (self.in_recovery,)

    def close(self):
        self.closed = True


def test_target_problem_pings_then_logs_in():
    pinged = []

    def ok(info, **_kwargs):
        pinged.append(info)
        return 0

    assert target_problem("pg2", 5432, 3, ping=ok, connect=lambda **kw: FakeConn(False)) is None
    assert pinged == ["host=pg2 port=5432 connect_timeout=3"]
    assert "no PostgreSQL server answered" in target_problem("pg2", 5432, 3, ping=lambda i: 2, connect=ok)
    assert "refuses connections" in target_problem("pg2", 5432, 3, ping=lambda i: 1, connect=ok)
    conn = FakeConn(True)
    login = dict(user="monitor", password="pw", dbname="appdb")
    assert target_problem("pg2", 5432, 3, login, ping=ok, connect=lambda **kw: conn) == \
        "it is a standby (in recovery), not a primary"
    assert conn.closed
    assert target_problem("pg2", 5432, 3, login, ping=ok, connect=lambda **kw: FakeConn(False)) is None

    def refused(**kwargs):
        assert kwargs["user"] == "monitor" and kwargs["dbname"] == "appdb" and kwargs["connect_timeout"] == 3
        raise RuntimeError("password authentication failed")
    assert target_problem("pg2", 5432, 3, login, ping=ok, connect=refused) == \
        "could not log in as monitor to check it is not a standby: password authentication failed"


def test_entry_target_defaults():
    assert entry_target([("host", "pg2"), ("port", "6543"), ("dbname", "x")], "appdb") == ("pg2", 6543, "x")
    assert entry_target([("host", "pg2")], "appdb") == ("pg2", 5432, "appdb")
