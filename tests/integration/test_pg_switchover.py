# -*- coding: utf-8 -*-
"""dbstack.ha.pg_switchover with pgbouncer_reload's wait_for_primary: a real primary, a real standby, a real PgBouncer.

The module runs where the old primary runs (here: this machine); the stop and start commands are pg_ctl as the
servers' user. First a switchover that must roll back (the standby's replay paused), then one that succeeds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import threading
import time

import psycopg
import pytest

from ansible_collections.dbstack.ha.tests.integration.runner import run_module
from ansible_collections.dbstack.ha.tests.integration.servers import PG_BIN, PostgresNode
from ansible_collections.dbstack.ha.tests.integration.test_pgbouncer_reload import ADMIN, SUPER, Bouncer, backend_port


def pg_ctl(node, action):
    argv = [os.path.join(PG_BIN, "pg_ctl"), action, "-D", node.data, "-m", "fast", "-w"]
    if action == "start":
        argv = [os.path.join(PG_BIN, "pg_ctl"), "start", "-D", node.data, "-w", "-l", node.log + ".ctl",
                "-o", "-p %d" % node.port]
    return (["runuser", "-u", node.runas.user, "--"] if node.runas.user else []) + argv


@pytest.fixture(scope="module")
def stack():
    pgb = Bouncer()
    standby = PostgresNode(pgb.base, "c", pgb.runas, pgb.pki, SUPER).clone_from(pgb.a).start()
    standby.wait_streaming(pgb.a)
    try:
        yield pgb, standby
    finally:
        standby.stop()
        os.system(" ".join(pg_ctl(pgb.a, "stop")) + " >/dev/null 2>&1")  # started by pg_ctl after a roll-back
        pgb.stop()


def as_number(lsn):
    high, low = lsn.split("/")
    return int(high, 16) << 32 | int(low, 16)


def switchover_args(pgb, old, target, **extra):
    args = dict(login_host="127.0.0.1", login_port=target.port, login_user="postgres", login_password=SUPER,
                pgbouncers=[dict(host="127.0.0.1", port=pgb.port, user="pgbadmin", password=ADMIN,
                                 databases=["appdb"])],
                stop_command=pg_ctl(old, "stop"), start_command=pg_ctl(old, "start"), data_directory=old.data,
                pg_controldata=os.path.join(PG_BIN, "pg_controldata"), slots=["old_primary"], replay_timeout=3)
    args.update(extra)
    return args


def follower_args(pgb, target, **extra):
    args = dict(login_host="127.0.0.1", login_port=pgb.port, login_user="pgbadmin", login_password=ADMIN,
                config_file=pgb.ini, databases=[dict(name="appdb", host="127.0.0.1", port=target.port)],
                pause=False, resume=True, wait_for_primary=20, target_user="postgres", target_password=SUPER)
    args.update(extra)
    return args


def test_a_switchover_that_cannot_prove_rpo_0_rolls_back(stack, tmp_path):
    pgb, standby = stack
    _out, check = run_module("dbstack.ha.pg_switchover", switchover_args(pgb, pgb.a, standby), tmp_path, check=True)
    assert check["changed"] is True and check["promoted"] is False
    # With relax_sync the target's synchronous_standby_names is emptied before the freeze, and put back on a roll-back.
    # (In its configuration file, as postgres_ha sets it: relax_sync's override is an ALTER SYSTEM, reset on roll-back.)
    with open(os.path.join(standby.data, "postgresql.conf"), "a") as conf:
        conf.write("\nsynchronous_standby_names = 'FIRST 1 (nobody)'\n")
    standby.psql("SELECT pg_reload_conf()")
    standby.psql("SELECT pg_wal_replay_pause()")
    try:
        output, result = run_module("dbstack.ha.pg_switchover", switchover_args(pgb, pgb.a, standby, relax_sync=True),
                                    tmp_path, expect_rc=2)
    finally:
        standby.psql("SELECT pg_wal_replay_resume()")
    assert "switchover stopped at the replay check" in result["msg"], result["msg"]
    assert "the old primary was started again" in result["msg"] and "PgBouncer resumed" in result["msg"]
    assert "synchronous_standby_names override was reset" in result["msg"] and result["sync_relaxed"] is None
    assert standby.psql("SHOW synchronous_standby_names") == "FIRST 1 (nobody)"
    assert result["promoted"] is False and result["checkpoint_lsn"]
    assert SUPER not in output and ADMIN not in output
    assert standby.psql("SELECT pg_is_in_recovery()") == "t"
    assert standby.psql("SELECT count(*) FROM pg_replication_slots") == "0"
    assert backend_port(pgb) == pgb.a.port  # the old primary serves again, PgBouncer is not paused
    standby.wait_streaming(pgb.a)


def test_switchover_with_the_follower(stack, tmp_path):
    pgb, standby = stack
    # Writes acknowledged on the old primary up to the switch must be on the new one.
    with pgb.client() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS acked (n int)")
        conn.execute("INSERT INTO acked SELECT generate_series(1, 1000)")
    followed = {}
    follower_dir = tmp_path / "follower"
    follower_dir.mkdir()
    follower = threading.Thread(target=lambda: followed.update(result=run_module(
        "dbstack.ha.pgbouncer_reload", follower_args(pgb, standby), follower_dir)[1]))
    follower.start()
    time.sleep(3)  # the follower is polling the standby
    # The target carries FIRST 1 over a name that never connects (left by the roll-back test): relax_sync empties it
    # before the freeze, so the writes below through PgBouncer do not wait for a standby.
    _out, result = run_module("dbstack.ha.pg_switchover", switchover_args(pgb, pgb.a, standby, relax_sync=True),
                              tmp_path)
    follower.join(60)
    assert result["promoted"] is True and result["changed"] is True
    assert result["sync_relaxed"] == "FIRST 1 (nobody)" and standby.psql("SHOW synchronous_standby_names") == ""
    assert result["slots_created"] == ["old_primary"]
    assert set(result["timings_ms"]) == {"pause", "stop", "controldata", "replay_wait", "slots", "promote", "total"}
    assert result["timeline_after"] == 2
    assert as_number(result["replayed_lsn"]) > as_number(result["checkpoint_lsn"])
    assert followed["result"]["changed"] is True and followed["result"]["resumed"] == ["appdb"]
    assert followed["result"]["waited_ms"] > 0
    assert backend_port(pgb) == standby.port  # PgBouncer follows the new primary, not paused
    with pgb.client() as conn:
        assert conn.execute("SELECT count(*) FROM acked").fetchone()[0] == 1000
        conn.execute("INSERT INTO acked VALUES (1001)")  # a write: it is a primary
    assert standby.psql("SELECT slot_name FROM pg_replication_slots") == "old_primary"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=pgb.a.port, user="postgres", password=SUPER, connect_timeout=2)


def test_follower_times_out_without_changing_anything(stack, tmp_path):
    pgb, standby = stack
    with open(pgb.ini) as handle:
        before = handle.read()
    _out, result = run_module("dbstack.ha.pgbouncer_reload",
                              follower_args(pgb, pgb.b, wait_for_primary=2, target_password="wrong"), tmp_path,
                              expect_rc=2)
    assert "did not become a primary within wait_for_primary=2 s" in result["msg"]
    assert "password authentication failed" in result["msg"] and "Nothing was changed" in result["msg"]
    with open(pgb.ini) as handle:
        assert handle.read() == before
