# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dbstack.ha.plugins.module_utils.promote import Decision, decide, timeline_from_walfile

WRITABLE = dict(host="pg1", port=5432, reachable=True, writable=True)
READ_ONLY = dict(host="pg1", port=5432, reachable=True, writable=False)
UNCHECKED = dict(host="pg1", port=5432, reachable=True, writable=None, error="password authentication failed")
DOWN = dict(host="pg1", port=5432, reachable=False, writable=None, error="connection refused")


def test_primary_needs_nothing():
    decision = decide(False, upstream=WRITABLE)
    assert decision.action == Decision.NOTHING


def test_standby_without_upstream_is_promoted():
    assert decide(True).action == Decision.PROMOTE


def test_writable_upstream_refuses():
    decision = decide(True, upstream=WRITABLE)
    assert decision.action == Decision.REFUSE
    assert "pg1:5432" in decision.reason and "split brain" in decision.reason


def test_unchecked_but_answering_upstream_refuses():
    decision = decide(True, upstream=UNCHECKED)
    assert decision.action == Decision.REFUSE
    assert "could not be checked" in decision.reason


def test_read_only_upstream_allows():
    assert decide(True, upstream=READ_ONLY).action == Decision.PROMOTE


def test_down_upstream_promotes_with_warning():
    decision = decide(True, upstream=DOWN)
    assert decision.action == Decision.PROMOTE
    assert any("unreachable" in w and "fenced" in w for w in decision.warnings)


@pytest.mark.parametrize("lag, limit, action", [
    (0, 0, Decision.PROMOTE),
    (100, 100, Decision.PROMOTE),
    (101, 100, Decision.REFUSE),
    (None, 100, Decision.REFUSE),
    (10 ** 9, None, Decision.PROMOTE),
])
def test_lag_guard(lag, limit, action):
    assert decide(True, lag_bytes=lag, max_lag_bytes=limit).action == action


def test_force_overrides_every_guard_but_says_so():
    decision = decide(True, lag_bytes=500, max_lag_bytes=10, upstream=WRITABLE, force=True)
    assert decision.action == Decision.PROMOTE
    assert len(decision.warnings) == 2
    assert all(w.startswith("force=true overrides") for w in decision.warnings)


def test_both_refusals_are_reported():
    decision = decide(True, lag_bytes=500, max_lag_bytes=10, upstream=WRITABLE)
    assert "split brain" in decision.reason and "max_lag_bytes=10" in decision.reason


def test_force_does_not_promote_a_primary():
    assert decide(False, force=True).action == Decision.NOTHING


@pytest.mark.parametrize("walfile, timeline", [
    ("000000010000000000000003", 1),
    ("0000000A00000001000000FF", 10),
    ("", None),
    (None, None),
    ("zzzzzzzz0000", None),
])
def test_timeline_from_walfile(walfile, timeline):
    assert timeline_from_walfile(walfile) == timeline
