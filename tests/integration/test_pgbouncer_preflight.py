# -*- coding: utf-8 -*-
"""Bad input to the pgbouncer role fails before any change (see runner.run_role_preflight)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dbstack.ha.tests.integration.runner import (
    assert_past_preflight,
    assert_stopped_in_preflight,
    run_role_preflight,
)

GOOD = dict(pgbouncer_databases=[dict(name="appdb")], pgbouncer_admin_password="a" * 16,
            pgbouncer_stats_password="s" * 16)
WITH_PRIMARY = {"pgbouncer": ["pgb1"], "postgres_primary": ["pg1"]}


@pytest.mark.parametrize("groups, extra, expected", [
    (WITH_PRIMARY, dict(pgbouncer_pool_mode="sometimes"),
     "pgbouncer_pool_mode must be one of: session, transaction, statement"),
    (WITH_PRIMARY, dict(pgbouncer_default_pool_size=500, pgbouncer_backend_max_connections=150),
     "pgbouncer_default_pool_size (500) + pgbouncer_reserve_pool_size (10) is more than the backend accepts"),
    (WITH_PRIMARY, dict(pgbouncer_databases=[dict(name="appdb"), dict(name="jobs", pool_size=200, pool_mode="session")],
                        pgbouncer_backend_max_connections=150),
     "pgbouncer_databases jobs: pool_size + pgbouncer_reserve_pool_size (10) is more than the backend accepts"),
    (WITH_PRIMARY, dict(pgbouncer_databases=[dict(name="appdb", pool_mode="sometimes")]),
     "pool_mode"),
    ({"pgbouncer": ["pgb1"]}, {}, "PgBouncer needs a backend"),
    (WITH_PRIMARY, dict(pgbouncer_databases=[]), "pgbouncer_databases must list at least one database"),
    (WITH_PRIMARY, dict(pgbouncer_admin_password=""), "set pgbouncer_admin_password and pgbouncer_stats_password"),
    (WITH_PRIMARY, dict(pgbouncer_limit_nofile=1024), "pgbouncer_limit_nofile (1024) must exceed max_client_conn"),
])
def test_bad_input_fails_before_any_change(tmp_path, groups, extra, expected):
    rc, output = run_role_preflight(tmp_path, "dbstack.ha.pgbouncer", "pgbouncer", groups, dict(GOOD, **extra))
    assert_stopped_in_preflight(rc, output, expected)


def test_good_input_gets_past_the_preflight(tmp_path):
    rc, output = run_role_preflight(tmp_path, "dbstack.ha.pgbouncer", "pgbouncer", WITH_PRIMARY, GOOD)
    assert_past_preflight(rc, output, first_change="Current primary | Ask each PostgreSQL server")


def test_without_postgres_ha_it_asks_the_postgres_hosts_not_the_inventory(tmp_path):
    # Run on its own, the role does not take the postgres_primary group for the primary: it asks every
    # PostgreSQL host (here none answers) and refuses, before installing anything.
    groups = {"pgbouncer": ["pgb1"], "postgres_primary": ["pg1"], "postgres_standby": ["pg2"]}
    rc, output = run_role_preflight(tmp_path, "dbstack.ha.pgbouncer", "pgbouncer", groups, GOOD)
    assert rc == 2, output
    assert ("PgBouncer cannot be pointed at the primary: no node can be taken as the primary (pg1: unknown, "
            "pg2: unknown): no node answered") in " ".join(output.split())
    assert "pgb1 -> pg1" in output and "pgb1 -> pg2" in output
    assert "Install |" not in output
