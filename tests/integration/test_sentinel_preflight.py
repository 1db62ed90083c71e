# -*- coding: utf-8 -*-
"""Bad input to the sentinel role fails before any change (see runner.run_role_preflight)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dbstack.ha.tests.integration.runner import (
    assert_past_preflight,
    assert_stopped_in_preflight,
    run_role_preflight,
)

GOOD = dict(sentinel_redis_password="r" * 24, sentinel_password="s" * 24)
STACK = {"redis": ["redis1", "redis2"], "sentinel": ["redis1", "redis2", "mon1"]}
INITIAL = {"redis1": {"redis_initial_role": "master"}}


@pytest.mark.parametrize("groups, extra, host_vars, expected", [
    (STACK, dict(sentinel_quorum=4), INITIAL, "sentinel_quorum must be between 1 and the number of Sentinels (got 4)"),
    ({"redis": ["redis1", "redis2"], "sentinel": ["redis1", "redis2"]}, {}, INITIAL,
     "at least 3 Sentinels, so that a majority survives one failure (has 2)"),
    ({"redis": ["redis1"], "sentinel": ["redis1", "s2", "s3"]}, {}, INITIAL,
     "needs a master and at least one replica (has 1: redis1)"),
    (STACK, dict(sentinel_initial_master="mon1"), {}, "the initial master (mon1"),
    (STACK, {}, {"redis1": {"redis_initial_role": "master"}, "redis2": {"redis_initial_role": "master"}},
     "at most one host may set redis_initial_role=master (got redis1, redis2)"),
    (STACK, dict(sentinel_redis_password=""), INITIAL, "Authentication is on: set sentinel_redis_password"),
    (STACK, dict(sentinel_password="has a space and is long"), INITIAL, "Authentication is on"),
    (STACK, dict(sentinel_failover_timeout_ms=1000), INITIAL, "below sentinel_failover_timeout_ms (got 1000)"),
    (STACK, dict(sentinel_redis_min_replicas_to_write=2), INITIAL,
     "or the master could never accept a write (got 2)"),
    (STACK, dict(sentinel_redis_maxmemory="lots"), INITIAL, 'a size such as 0, 512mb or 2gb (got "lots")'),
    (STACK, dict(sentinel_quorum="two"), INITIAL, "sentinel_quorum"),
])
def test_bad_input_fails_before_any_change(tmp_path, groups, extra, host_vars, expected):
    rc, output = run_role_preflight(tmp_path, "dbstack.ha.sentinel", "stack", groups, dict(GOOD, **extra),
                                    host_vars=host_vars)
    assert_stopped_in_preflight(rc, output, expected)
    for secret in ("r" * 24, "s" * 24):
        assert secret not in output


def test_good_input_gets_past_the_preflight(tmp_path):
    rc, output = run_role_preflight(tmp_path, "dbstack.ha.sentinel", "stack", STACK, GOOD, host_vars=INITIAL)
    assert_past_preflight(rc, output)
