# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dbstack.ha.plugins.filter.redis_topology import redis_current_master, sentinel_master_address


def node(host, address, bootstrapped=True, running=True, role="master"):
    return dict(host=host, address=address, port=6379, bootstrapped=bootstrapped, running=running, role=role)


def sentinel(host, address, name="dbstack"):
    info = {"sentinel_masters": 1}
    if address:
        info["master0"] = {"name": name, "status": "ok", "address": address, "slaves": 1, "sentinels": 3}
    return dict(host=host, info=info)


FRESH = [node("r1", "10.0.0.1", False, False, ""), node("r2", "10.0.0.2", False, False, "")]


def decide(nodes, sentinels, initial="r1", quorum=2):
    return redis_current_master(nodes, sentinels, initial, quorum, "dbstack")


def test_fresh_stack_takes_the_initial_master():
    result = decide(FRESH, [])
    assert result["master"] == "r1" and result["source"] == "initial" and result["problems"] == []
    assert result["address"] == "10.0.0.1" and result["port"] == 6379


def test_after_a_failover_the_sentinels_master_wins_over_the_inventory():
    nodes = [node("r1", "10.0.0.1", role="slave"), node("r2", "10.0.0.2")]
    sentinels = [sentinel(h, "10.0.0.2:6379") for h in ("r1", "r2", "s3")]
    result = decide(nodes, sentinels, initial="r1")
    assert result["master"] == "r2" and result["source"] == "sentinels"
    assert result["votes"] == {"10.0.0.2:6379": 3}


def test_failover_under_way_is_a_problem_not_a_guess():
    nodes = [node("r1", "10.0.0.1", running=False), node("r2", "10.0.0.2", role="slave")]
    sentinels = [sentinel(h, "10.0.0.1:6379") for h in ("r2", "s3")]
    result = decide(nodes, sentinels)
    assert result["master"] == ""
    assert "failover is probably under way" in result["problems"][0] and "down" in result["problems"][0]


def test_sentinels_without_a_quorum_and_disagreeing():
    nodes = [node("r1", "10.0.0.1"), node("r2", "10.0.0.2")]
    sentinels = [sentinel("r1", "10.0.0.1:6379"), sentinel("r2", "10.0.0.2:6379")]
    result = decide(nodes, sentinels)
    assert "disagree" in result["problems"][0]


def test_two_running_masters_without_sentinels_is_split_brain():
    nodes = [node("r1", "10.0.0.1"), node("r2", "10.0.0.2")]
    result = decide(nodes, [sentinel("s3", "")])
    assert "all run as masters" in result["problems"][0]


def test_one_running_master_without_sentinels():
    nodes = [node("r1", "10.0.0.1", role="slave"), node("r2", "10.0.0.2")]
    result = decide(nodes, [])
    assert result["master"] == "r2" and result["source"] == "nodes"


def test_no_running_master():
    nodes = [node("r1", "10.0.0.1", running=False), node("r2", "10.0.0.2", role="slave")]
    result = decide(nodes, [])
    assert "no Redis node runs as master" in result["problems"][0]


def test_sentinels_following_an_unknown_master():
    nodes = [node("r1", "10.0.0.1", role="slave"), node("r2", "10.0.0.2", role="slave")]
    sentinels = [sentinel(h, "10.0.0.9:6379") for h in ("r1", "r2", "s3")]
    assert "no node of the redis group" in decide(nodes, sentinels)["problems"][0]


def test_a_sentinel_watching_other_masters_only():
    assert sentinel_master_address(sentinel("s", "10.0.0.1:6379", name="other")["info"], "dbstack") == ""
    assert sentinel_master_address({}, "dbstack") == ""
    assert sentinel_master_address(None, "dbstack") == ""


def test_unknown_initial_master():
    assert "not in the redis group" in decide(FRESH, [], initial="r9")["problems"][0]
