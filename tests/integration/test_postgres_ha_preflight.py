# -*- coding: utf-8 -*-
"""Bad input to the postgres_ha role fails in its preflight, before any change.

The hosts point at containers that do not exist: the argument-spec check and
the preflight run on the controller, so a run that got past them would fail as
unreachable at the first real task instead of touching anything.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dbstack.ha.tests.integration.runner import (
    assert_past_preflight,
    assert_stopped_in_preflight,
    run_role_preflight,
)

GOOD = dict(postgres_ha_replication_password="x" * 16)


def run_role(tmp_path, groups, extra, host_vars=None):
    return run_role_preflight(tmp_path, "dbstack.ha.postgres_ha", "postgres", groups, dict(GOOD, **extra), host_vars)


PAIR = {"postgres_primary": ["pg1"], "postgres_standby": ["pg2"]}


@pytest.mark.parametrize("groups, extra, host_vars, expected", [
    (PAIR, dict(postgres_ha_sync_mode="sometimes"), None,
     "postgres_ha_sync_mode must be one of: none, first, any"),
    ({"postgres_standby": ["pg2"]}, {}, None,
     "A standby needs a primary in the inventory"),
    (PAIR, {}, {"pg2": {"postgres_ha_slot_name": "pg-2"}},
     "Replication slot names (postgres_ha_slot_name) may only use lower-case letters"),
    (PAIR, dict(postgres_ha_users=[dict(name="app", lock_timeout="30s", statement_timeout="5s")]), None,
     "must be above its lock_timeout"),
    (PAIR, dict(postgres_ha_databases=[dict(name="app", statement_timeout="5 seconds")]), None,
     "is not a PostgreSQL duration"),
    (PAIR, dict(postgres_ha_replication_password=""), None,
     "postgres_ha_replication_password (required"),
    (PAIR, dict(postgres_ha_sync_mode="any", postgres_ha_sync_num=2), None,
     "postgres_ha_sync_num (1 to the number of standbys, got 2)"),
])
def test_bad_input_fails_before_any_change(tmp_path, groups, extra, host_vars, expected):
    rc, output = run_role(tmp_path, groups, extra, host_vars)
    assert_stopped_in_preflight(rc, output, expected)  # nothing past the checks ran: no host was contacted


def test_good_input_gets_past_the_preflight(tmp_path):
    """The same harness with valid input reaches the first real task (and cannot connect)."""
    rc, output = run_role(tmp_path, PAIR, {})
    assert_past_preflight(rc, output)
