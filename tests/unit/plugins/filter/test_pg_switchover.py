# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dbstack.ha.plugins.filter.pg_rejoin import pg_rejoin_check
from ansible_collections.dbstack.ha.plugins.filter.pg_switchover import pg_switchover_plan

SLOTS = dict(pg1="pg1", pg2="pg2", pg3="pg3")
MIB = 1048576


def read(in_recovery, replication=(), old=()):
    return dict(query_result=[dict(in_recovery=in_recovery, replication=list(replication),
                                   old_transactions=list(old))])


def sender(name, lag=0, state="streaming", sync="async"):
    return dict(application_name=name, state=state, lag_bytes=lag, sync_state=sync)


def plan(reads, target="", max_lag=10 * MIB):
    return pg_switchover_plan(reads, target, SLOTS, "pg1", max_lag)


def test_picks_the_sync_standby_then_the_least_lag():
    reads = dict(pg1=read(False, [sender("pg2", 500), sender("pg3", 100)]), pg2=read(True), pg3=read(True))
    result = plan(reads)
    assert result["problems"] == [] and result["primary"] == "pg1" and result["target"] == "pg3"
    assert result["followers"] == ["pg1", "pg2"] and result["lag_bytes"] == 100
    reads["pg1"] = read(False, [sender("pg2", 500, sync="sync"), sender("pg3", 100)])
    assert plan(reads)["target"] == "pg2"
    assert plan(reads, target="pg3")["target"] == "pg3"


def test_refusals_name_the_cause():
    reads = dict(pg1=read(False, [sender("pg2", 20 * MIB)]), pg2=read(True))
    assert "is 20.0 MiB behind pg1 (limit 10.0 MiB)" in plan(reads)["problems"][0]
    assert "already the primary" in plan(reads, target="pg1")["problems"][0]
    assert "pg9 is not a PostgreSQL node" in plan(reads, target="pg9")["problems"][0]
    reads = dict(pg1=read(False, [sender("pg2", state="catchup")]), pg2=read(True))
    assert "not streaming from pg1 (walsender state catchup)" in plan(reads, target="pg2")["problems"][0]
    assert "no standby streams from pg1" in plan(reads)["problems"][0]
    reads = dict(pg1=read(False, [sender("pg2")]), pg2=read(False))
    assert "split brain" in plan(reads)["problems"][0]
    reads = dict(pg1=read(False, [sender("pg2")]), pg2=read(True), pg3=dict(failed=True, msg="down"))
    result = plan(reads)
    assert result["target"] == "pg2" and "pg3 did not answer" in result["problems"][0]


def test_old_transactions_are_passed_on():
    reads = dict(pg1=read(False, [sender("pg2")], old=[dict(pid=42, age_seconds=20.5)]), pg2=read(True))
    assert plan(reads)["old_transactions"] == [dict(pid=42, age_seconds=20.5)]


CONTROL = """pg_control version number:            1300
Database cluster state:               %s
Latest checkpoint location:           %s
Latest checkpoint's REDO location:    0/3471490
Latest checkpoint's TimeLineID:       %d
"""
HISTORY = "1\t0/5000148\tno recovery target specified\n"


def test_a_clean_former_primary_before_the_fork_rejoins_as_it_is():
    result = pg_rejoin_check(CONTROL % ("shut down", "0/50000D8", 1), HISTORY, 2)
    assert result["ok"] is True and result["switchpoint"] == "0/5000148" and result["timeline"] == 1
    assert result["action"] == "follow"
    assert result["reason"] == "shut down cleanly at 0/50000D8, before the fork of timeline 2 at 0/5000148"


def test_anything_else_needs_pg_rewind_or_a_clone():
    crashed = pg_rejoin_check(CONTROL % ("in production", "0/50000D8", 1), HISTORY, 2)
    assert crashed["ok"] is False and "not shut down cleanly (state: in production)" in crashed["reason"]
    assert crashed["action"] == "rewind" and crashed["switchpoint"] == "0/5000148"
    past = pg_rejoin_check(CONTROL % ("shut down", "0/5000200", 1), HISTORY, 2)
    assert past["ok"] is False and "diverged and needs pg_rewind" in past["reason"] and past["action"] == "rewind"
    # LSNs compare as numbers, not as text: 0/A0000000 is past 0/5000148
    assert pg_rejoin_check(CONTROL % ("shut down", "0/A0000000", 1), HISTORY, 2)["ok"] is False
    assert pg_rejoin_check(CONTROL % ("shut down", "1/0", 1), "1\tF/0\tx\n", 2)["ok"] is True
    other = pg_rejoin_check(CONTROL % ("shut down", "0/50000D8", 3), HISTORY, 2)
    assert "timeline 3 is not in the current primary's history" in other["reason"] and other["action"] == "rebuild"
    same = pg_rejoin_check(CONTROL % ("in production", "0/50000D8", 2), HISTORY, 2)
    assert "two primaries were made from one timeline" in same["reason"] and same["action"] == "rebuild"
    assert "is this a PostgreSQL data directory" in pg_rejoin_check("garbage", HISTORY, 2)["reason"]
