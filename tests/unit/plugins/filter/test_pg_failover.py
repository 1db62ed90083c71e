# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dbstack.ha.plugins.filter.pg_failover import pg_failover_plan

PG = ["pg1", "pg2", "pg3"]
PGB = ["pgb1", "pgb2"]
DOWN = dict(reachable=False, error="timeout expired")


def primary(lsn="0/5000000", timeline=1):
    return dict(reachable=True, in_recovery=False, writable=True, timeline=timeline, lsn=lsn)


def standby(lsn, timeline=1):
    return dict(reachable=True, in_recovery=True, writable=False, timeline=timeline, lsn=lsn)


def probe(**nodes):
    return dict(changed=False, nodes=nodes)


UNREACHABLE = dict(unreachable=True, msg="Failed to connect")


def dead_primary(pg3_lsn="0/4FFFF00"):
    """pg1 (the primary) is gone: its host does not answer, nobody reaches its PostgreSQL."""
    view = dict(pg1=DOWN, pg2=standby("0/5000000"), pg3=standby(pg3_lsn))
    return dict(pg1=UNREACHABLE, pg2=probe(**view), pg3=probe(**view), pgb1=probe(**view), pgb2=probe(**view))


def test_a_dead_primary_promotes_the_standby_with_the_most_wal():
    plan = pg_failover_plan(dead_primary(), PG, PGB)
    assert plan["problems"] == []
    assert plan["target"] == "pg2" and plan["target_lsn"] == "0/5000000"
    assert plan["old_primaries"] == ["pg1"] and plan["fence_unreached"] == ["pg1"] and plan["fence_on_host"] == []
    assert plan["followers"] == ["pg3"] and plan["ahead"] == []
    assert [(c["host"], c["behind_bytes"]) for c in plan["candidates"]] == [("pg2", 0), ("pg3", 256)]
    # the other standby has more WAL: it is the one
    assert pg_failover_plan(dead_primary("0/5000100"), PG, PGB)["target"] == "pg3"


def test_a_higher_timeline_wins_over_a_higher_lsn():
    obs = dead_primary()
    for host in ("pg2", "pg3", "pgb1", "pgb2"):
        obs[host]["nodes"]["pg3"] = standby("0/4000000", timeline=2)
    assert pg_failover_plan(obs, PG, PGB)["target"] == "pg3"


def test_a_primary_seen_writable_by_a_standby_and_a_pgbouncer_is_not_failed_over():
    view = dict(pg1=primary(), pg2=standby("0/5000000"), pg3=standby("0/5000000"))
    obs = dict((h, probe(**view)) for h in PG + PGB)
    plan = pg_failover_plan(obs, PG, PGB)
    assert len(plan["problems"]) == 1
    assert "pg1 still takes writes as seen from pg2, pg3 (standby) and pgb1, pgb2 (PgBouncer)" in plan["problems"][0]
    assert "failover_force=true" in plan["problems"][0]
    forced = pg_failover_plan(obs, PG, PGB, force=True)
    assert forced["problems"] == [] and forced["target"] == "pg2" and forced["fence_on_host"] == ["pg1"]
    assert forced["fence_first"] == ["pg1"] and forced["fence_later"] == []
    assert forced["warnings"][0].startswith("failover_force=true overrides: pg1 still takes writes")


def test_a_primary_cut_off_from_its_standbys_is_failed_over_and_fenced_on_its_host():
    """The controller still reaches pg1's host (and pg1 answers there), but no standby sees it: a partition."""
    cut = dict(pg1=DOWN, pg2=standby("0/5000000"), pg3=standby("0/5000000"))
    sees_it = dict(cut)
    sees_it["pg1"] = primary()
    obs = dict(pg1=probe(pg1=primary(), pg2=DOWN, pg3=DOWN), pg2=probe(**cut), pg3=probe(**cut),
               pgb1=probe(**sees_it), pgb2=probe(**cut))
    plan = pg_failover_plan(obs, PG, PGB)
    assert plan["problems"] == [] and plan["fence_on_host"] == ["pg1"] and plan["fence_unreached"] == []
    assert plan["seen_writable"]["pg1"] == dict(standbys=[], pgbouncers=["pgb1"])


def test_refusals():
    obs = dead_primary()
    plan = pg_failover_plan(obs, PG, PGB, target="pg3")
    assert "failover_target=pg3 (timeline 1, 0/4FFFF00) is behind pg2 (timeline 1, 0/5000000) by 256 bytes" \
        in plan["problems"][0]
    assert pg_failover_plan(obs, PG, PGB, target="pg3", force=True)["target"] == "pg3"
    assert "pg9 is not a PostgreSQL node" in pg_failover_plan(obs, PG, PGB, target="pg9")["problems"][0]
    assert "pg1 is not a reachable standby" in pg_failover_plan(obs, PG, PGB, target="pg1")["problems"][0]
    # no standby at all
    nothing = dict(pg1=UNREACHABLE, pg2=UNREACHABLE, pg3=UNREACHABLE, pgb1=probe(pg1=DOWN, pg2=DOWN, pg3=DOWN),
                   pgb2=UNREACHABLE)
    plan = pg_failover_plan(nothing, PG, PGB)
    assert plan["target"] == "" and "no reachable standby to promote" in plan["problems"][0]
    assert plan["unreached"] == ["pg1", "pg2", "pg3", "pgb2"]


def test_a_rerun_after_the_promotion_says_what_to_do():
    """pg2 was promoted (the only standby) but PgBouncer still points to the dead pg1."""
    view = dict(pg1=DOWN, pg2=primary(timeline=2))
    obs = dict(pg1=UNREACHABLE, pg2=probe(**view), pgb1=probe(**view))
    plan = pg_failover_plan(obs, ["pg1", "pg2"], ["pgb1"])
    assert "pg2 already runs as a writable primary" in plan["problems"][0] and "site.yml" in plan["problems"][0]


def test_a_standby_whose_host_is_not_reached_is_not_a_candidate():
    obs = dead_primary("0/6000000")
    obs["pg3"] = UNREACHABLE
    plan = pg_failover_plan(obs, PG, PGB)
    assert plan["target"] == "pg2" and "pg3 is a standby but this controller cannot reach" in plan["warnings"][0]


def test_a_follower_ahead_of_an_explicit_target_is_named():
    plan = pg_failover_plan(dead_primary(), PG, PGB, target="pg3", force=True)
    assert plan["ahead"] == ["pg2"]


def test_a_host_that_answers_without_postgresql_is_fenced_after_the_promotion():
    obs = dead_primary()
    obs["pg1"] = probe(pg1=DOWN, pg2=standby("0/5000000"), pg3=standby("0/4FFFF00"))
    plan = pg_failover_plan(obs, PG, PGB)
    assert plan["fence_on_host"] == ["pg1"] and plan["fence_first"] == [] and plan["fence_later"] == ["pg1"]
