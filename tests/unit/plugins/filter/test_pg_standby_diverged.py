# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dbstack.ha.plugins.filter.pg_standby_diverged import pg_standby_diverged

HISTORY = "1\t0/5000000\tno recovery target specified\n\n2\t0/7000100\tno recovery target specified\n"


def test_on_the_primary_timeline_it_follows():
    result = pg_standby_diverged(3, "0/9000000", HISTORY, 3)
    assert result["diverged"] is False and result["action"] == "follow"


def test_an_older_timeline_before_the_fork_can_follow():
    result = pg_standby_diverged(2, "0/7000100", HISTORY, 3)  # exactly at the switchpoint: nothing past it
    assert result["diverged"] is False and result["switchpoint"] == "0/7000100"
    assert pg_standby_diverged(1, "0/4FFFFFF", HISTORY, 3)["diverged"] is False


def test_past_the_fork_it_needs_a_rewind():
    result = pg_standby_diverged(2, "0/70001B0", HISTORY, 3)
    assert result["diverged"] is True and result["action"] == "rewind"
    assert result["ahead_bytes"] == 0xB0 and "176 bytes past 0/7000100" in result["reason"]
    assert pg_standby_diverged(1, "0/5000001", HISTORY, 2)["action"] == "rewind"


def test_a_timeline_outside_the_history_is_another_lineage():
    for timeline in (4, 7):
        result = pg_standby_diverged(timeline, "0/9000000", HISTORY, 3)
        assert result["diverged"] is True and result["action"] == "rebuild"
    assert pg_standby_diverged(2, "0/9000000", "", 1)["action"] == "rebuild"


def test_no_replay_position_is_treated_as_diverged():
    assert pg_standby_diverged(2, "", HISTORY, 3)["action"] == "rewind"
