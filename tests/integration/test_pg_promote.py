# -*- coding: utf-8 -*-
"""dbstack.ha.pg_promote against a real primary and a real streaming standby."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import itertools
import os
import shutil

import pytest

from ansible_collections.dbstack.ha.tests.integration.runner import run_module
from ansible_collections.dbstack.ha.tests.integration.servers import PostgresNode, lone_primary

PASSWORD = "promote-Super-Pw-9"
_names = itertools.count(1)


@pytest.fixture(scope="module")
def primary():
    with lone_primary("dbstack-promote-", PASSWORD, name="primary") as node:
        node.psql("CREATE TABLE t (id serial PRIMARY KEY, note text)")
        yield node


@pytest.fixture
def standby(primary):
    """A fresh streaming standby of the module's primary for each test."""
    node = PostgresNode(primary.base, "standby%d" % next(_names), primary.runas, primary.pki, PASSWORD)
    node.clone_from(primary).start()
    node.wait_streaming(primary)
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(node.data, ignore_errors=True)


def args_for(node, **extra):
    args = dict(login_host="127.0.0.1", login_port=node.port, login_user="postgres", login_password=PASSWORD)
    args.update(extra)
    return args


def test_refuses_while_upstream_primary_accepts_writes(primary, standby, tmp_path):
    output, result = run_module("dbstack.ha.pg_promote", args_for(standby), tmp_path, expect_rc=2)
    assert "still accepts writes" in result["msg"]
    assert "split brain" in result["msg"]
    assert result["upstream"]["host"] == "127.0.0.1"
    assert result["upstream"]["port"] == primary.port
    assert result["upstream"]["writable"] is True
    assert standby.psql("SELECT pg_is_in_recovery()") == "t"
    assert PASSWORD not in output


def test_check_mode_reports_and_changes_nothing(standby, tmp_path):
    _out, result = run_module("dbstack.ha.pg_promote", args_for(standby, force=True), tmp_path, check=True)
    assert result["changed"] is True
    assert result["promoted"] is True
    assert result["was_in_recovery"] is True
    assert standby.psql("SELECT pg_is_in_recovery()") == "t"


def test_force_promotes_then_rerun_is_unchanged(primary, standby, tmp_path):
    primary.psql("INSERT INTO t (note) VALUES ('before promotion')")
    primary.psql("SELECT pg_switch_wal()")
    output, result = run_module("dbstack.ha.pg_promote", args_for(standby, force=True), tmp_path)
    assert result["changed"] is True and result["promoted"] is True
    assert result["was_in_recovery"] is True
    assert result["timeline_after"] == result["timeline_before"] + 1
    assert result["elapsed_ms"] > 0
    assert "force=true overrides" in output
    # It is a primary now: it takes writes, and kept what it had replayed.
    assert standby.psql("SELECT pg_is_in_recovery()") == "f"
    standby.psql("INSERT INTO t (note) VALUES ('after promotion')")
    assert standby.psql("SELECT count(*) FROM t WHERE note = 'before promotion'") == "1"
    # Idempotent: already a primary, nothing to do.
    _out, again = run_module("dbstack.ha.pg_promote", args_for(standby), tmp_path)
    assert again["changed"] is False and again["promoted"] is False
    assert again["was_in_recovery"] is False
    assert again["timeline_after"] == result["timeline_after"]


def test_unreachable_upstream_is_treated_as_down(standby, tmp_path):
    # Point the standby at a closed port, as if its primary had died.
    standby.psql("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=postgres'")
    standby.psql("SELECT pg_reload_conf()")
    output, result = run_module("dbstack.ha.pg_promote", args_for(standby, max_lag_bytes=16 * 1024 * 1024),
                                tmp_path)
    assert result["promoted"] is True
    assert result["upstream"]["reachable"] is False
    assert result["lag_bytes"] == 0
    assert "treated as down" in output


def test_lag_guard(primary, standby, tmp_path):
    # Stop replay, write on the primary: the standby receives WAL it has not replayed... or
    # is simply behind the primary's current position, which is what max_lag_bytes measures.
    standby.psql("SELECT pg_wal_replay_pause()")
    primary.psql("INSERT INTO t (note) SELECT repeat('x', 1000) FROM generate_series(1, 2000)")
    _out, result = run_module("dbstack.ha.pg_promote",
                              args_for(standby, max_lag_bytes=1024, check_upstream=True, force=False),
                              tmp_path, expect_rc=2)
    assert result["lag_bytes"] > 1024
    assert "above max_lag_bytes=1024" in result["msg"]
    assert standby.psql("SELECT pg_is_in_recovery()") == "t"


def test_pg_ctl_method(standby, tmp_path):
    if os.geteuid() == 0:
        # pg_ctl must run as the cluster owner: as root the module must say so, not try.
        _out, result = run_module("dbstack.ha.pg_promote", args_for(standby, method="pg_ctl", force=True),
                                  tmp_path, expect_rc=2)
        assert "must run as the owner" in result["msg"]
        assert standby.psql("SELECT pg_is_in_recovery()") == "t"
    else:
        _out, result = run_module("dbstack.ha.pg_promote", args_for(standby, method="pg_ctl", force=True), tmp_path)
        assert result["promoted"] is True


def test_already_primary(primary, tmp_path):
    _out, result = run_module("dbstack.ha.pg_promote", args_for(primary), tmp_path)
    assert result["changed"] is False
    assert result["was_in_recovery"] is False
    assert result["timeline_after"] == 1


def test_unreachable_host(tmp_path):
    _out, result = run_module("dbstack.ha.pg_promote",
                              dict(login_host="127.0.0.1", login_port=1, login_password=PASSWORD, connect_timeout=2),
                              tmp_path, expect_rc=2)
    assert result["msg"].startswith("Unable to connect to PostgreSQL (host=127.0.0.1 port=1 user=postgres")


def test_wrong_password_never_shown(primary, tmp_path):
    output, result = run_module("dbstack.ha.pg_promote", args_for(primary, login_password="Wrong-Promote-Pw-5"),
                                tmp_path, expect_rc=2)
    assert "password authentication failed" in result["msg"]
    assert "Wrong-Promote-Pw-5" not in output


def test_bad_options_fail_before_connecting(tmp_path):
    _out, result = run_module("dbstack.ha.pg_promote", dict(login_host="127.0.0.1", login_port=1, wait_seconds=0),
                              tmp_path, expect_rc=2)
    assert "wait_seconds must be at least 1" in result["msg"]


def test_wait_for_lsn_and_slots(primary, standby, tmp_path):
    # Replay paused: the standby cannot get past the primary's position, so nothing is promoted.
    standby.psql("SELECT pg_wal_replay_pause()")
    primary.psql("INSERT INTO t (note) VALUES ('must not be lost')")
    lsn = primary.psql("SELECT pg_current_wal_lsn()")
    _out, result = run_module("dbstack.ha.pg_promote", args_for(standby, force=True, wait_for_lsn=lsn,
                                                                wait_for_lsn_timeout=2, slots=["follower_a"]),
                              tmp_path, expect_rc=2)
    assert "not past %s, within wait_for_lsn_timeout=2 s: not promoted" % lsn in result["msg"]
    assert result["promoted"] is False and standby.psql("SELECT pg_is_in_recovery()") == "t"
    assert standby.psql("SELECT count(*) FROM pg_replication_slots") == "0"
    # Replay going again: it gets past, creates the followers' slot, then promotes.
    standby.psql("SELECT pg_wal_replay_resume()")
    primary.psql("SELECT pg_switch_wal()")
    _out, result = run_module("dbstack.ha.pg_promote", args_for(standby, force=True, wait_for_lsn=lsn,
                                                                slots=["follower_a", "follower_b"]), tmp_path)
    assert result["promoted"] is True and result["slots_created"] == ["follower_a", "follower_b"]
    assert standby.psql("SELECT count(*) FROM t WHERE note = 'must not be lost'") == "1"
    assert standby.psql("SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots "
                        "WHERE restart_lsn IS NOT NULL") == "follower_a,follower_b"
    _out, bad = run_module("dbstack.ha.pg_promote", args_for(standby, wait_for_lsn="latest"), tmp_path, expect_rc=2)
    assert "wait_for_lsn must be an LSN" in bad["msg"]


def test_relax_sync_empties_synchronous_standby_names_after_the_promotion(standby, tmp_path):
    # The standby carries FIRST 1 over a name that never connects: promoted as it is, every commit would wait.
    with open(os.path.join(standby.data, "postgresql.conf"), "a") as conf:  # as postgres_ha sets it
        conf.write("\nsynchronous_standby_names = 'FIRST 1 (nobody)'\n")
    standby.psql("SELECT pg_reload_conf()")
    _out, preview = run_module("dbstack.ha.pg_promote", args_for(standby, force=True, relax_sync=True), tmp_path,
                               check=True)
    assert preview["promoted"] is True and preview["sync_relaxed"] == "FIRST 1 (nobody)"
    assert standby.psql("SELECT pg_is_in_recovery()") == "t"
    assert standby.psql("SHOW synchronous_standby_names") == "FIRST 1 (nobody)"
    _out, result = run_module("dbstack.ha.pg_promote", args_for(standby, force=True, relax_sync=True), tmp_path)
    assert result["promoted"] is True and result["sync_relaxed"] == "FIRST 1 (nobody)"
    assert standby.psql("SHOW synchronous_standby_names") == ""
    # A commit on the new primary completes (it would wait forever for "nobody" otherwise): bounded by timeout.
    standby.psql("SET statement_timeout = '10s'; INSERT INTO t (note) VALUES ('not waiting for a standby')")
    assert standby.psql("SELECT count(*) FROM t WHERE note = 'not waiting for a standby'") == "1"
    # Nothing to relax any more: sync_relaxed is null, and a re-run is unchanged.
    _out, again = run_module("dbstack.ha.pg_promote", args_for(standby, relax_sync=True), tmp_path)
    assert again["changed"] is False
