# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dbstack.ha.plugins.filter.pg_topology import FilterModule, pg_current_primary, pg_node_state


def answer(in_recovery=None, failed=False, unreachable=False, skipped=False):
    """A registered community.postgresql.postgresql_query result of SELECT pg_is_in_recovery() AS in_recovery."""
    if failed or unreachable or skipped:
        return dict(failed=failed, unreachable=unreachable, skipped=skipped, msg="unable to connect")
    return dict(changed=False, query_result=[dict(in_recovery=in_recovery)], rowcount=1)


def test_the_only_running_primary():
    result = pg_current_primary({"pg1": "standby", "pg2": "primary"}, "pg1")
    assert result["primary"] == "pg2" and result["running"] is True and result["reason"] == "running"
    assert result["problem"] == "" and result["running_primaries"] == ["pg2"]


def test_a_running_primary_wins_over_a_stopped_former_primary():
    result = pg_current_primary({"pg1": "stopped_primary", "pg2": "primary", "pg3": "standby"}, "pg1")
    assert result["primary"] == "pg2" and result["reason"] == "running"


def test_two_running_primaries_are_split_brain_naming_both():
    result = pg_current_primary({"pg2": "primary", "pg1": "primary", "pg3": "standby"}, "pg1")
    assert result["primary"] == "" and result["running"] is False and result["reason"] == "split_brain"
    assert result["running_primaries"] == ["pg1", "pg2"]
    assert result["problem"].startswith("pg1, pg2 are all running as primary (split brain)")
    assert "fence" in result["problem"]


def test_the_stopped_primary_when_none_runs():
    result = pg_current_primary({"pg1": "stopped_primary", "pg2": "standby"}, "pg2")
    assert result["primary"] == "pg1" and result["running"] is False and result["reason"] == "stopped_primary"


def test_two_stopped_primaries_and_none_running():
    result = pg_current_primary({"pg1": "stopped_primary", "pg2": "stopped_primary"}, "pg1")
    assert result["primary"] == "" and result["reason"] == "no_candidate"
    assert "pg1, pg2 hold stopped clusters that are not standbys" in result["problem"]


def test_fresh_cluster_takes_the_designated_primary():
    result = pg_current_primary({"pg1": "absent", "pg2": "absent"}, "pg1")
    assert result["primary"] == "pg1" and result["reason"] == "fresh" and result["running"] is False
    assert result["problem"] == ""


def test_fresh_cluster_with_a_designated_primary_outside_the_nodes():
    result = pg_current_primary({"pg1": "absent", "pg2": "absent"}, "pg9")
    assert result["primary"] == "" and result["reason"] == "no_candidate"
    assert "initial primary pg9 is not one of the PostgreSQL nodes (pg1, pg2)" in result["problem"]


def test_a_standby_left_alone_is_no_fresh_cluster():
    # The primary's data is gone (absent) but a standby holds the cluster: re-initialising the designated
    # primary would fork history; promote the standby instead.
    result = pg_current_primary({"pg1": "absent", "pg2": "stopped_standby"}, "pg1")
    assert result["primary"] == "" and result["reason"] == "no_candidate"
    assert "promote a standby with dbstack.ha.pg_promote" in result["problem"]
    assert "pg1: absent, pg2: stopped_standby" in result["problem"]


def test_only_running_standbys():
    result = pg_current_primary({"pg1": "standby", "pg2": "standby"}, "pg1")
    assert result["reason"] == "no_candidate" and "none is, or was, a primary" in result["problem"]


def test_in_recovery_answers_as_booleans_and_registered_results():
    assert pg_current_primary({"pg1": True, "pg2": False}, "pg1")["primary"] == "pg2"
    result = pg_current_primary({"pg1": answer(False), "pg2": answer(True)}, "pg2")
    assert result["primary"] == "pg1" and result["states"] == {"pg1": "primary", "pg2": "standby"}
    both = pg_current_primary({"pg1": answer(False), "pg2": answer(False)}, "pg1")
    assert both["reason"] == "split_brain" and both["running_primaries"] == ["pg1", "pg2"]


def test_a_node_that_did_not_answer_is_unknown_not_absent():
    result = pg_current_primary({"pg1": answer(failed=True), "pg2": answer(True)}, "pg1")
    assert result["primary"] == "" and result["unknown"] == ["pg1"] and result["reason"] == "no_candidate"
    assert "pg1 did not answer" in result["problem"]
    # One primary answered: it is the primary, the silent node is reported.
    result = pg_current_primary({"pg1": answer(unreachable=True), "pg2": answer(False)}, "pg1")
    assert result["primary"] == "pg2" and result["unknown"] == ["pg1"]


def test_nobody_answered():
    result = pg_current_primary({"pg1": answer(skipped=True), "pg2": None}, "pg1")
    assert result["reason"] == "no_candidate" and "no node answered" in result["problem"]


def test_no_nodes_at_all():
    result = pg_current_primary({}, "pg1")
    assert result["reason"] == "no_candidate" and "no PostgreSQL nodes" in result["problem"]
    assert pg_current_primary(None, "pg1")["primary"] == ""


def test_node_states():
    for state in ("absent", "primary", "standby", "stopped_standby", "stopped_primary", "unknown"):
        assert pg_node_state(state) == state
    assert pg_node_state(dict(query_result=[])) == "unknown"
    assert pg_node_state(dict(query_result=[dict(in_recovery="t")])) == "unknown"
    with pytest.raises(ValueError, match="unknown PostgreSQL node state 'running'"):
        pg_node_state("running")


def test_the_filter_is_registered():
    assert FilterModule().filters()["pg_current_primary"] is pg_current_primary
