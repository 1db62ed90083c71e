# -*- coding: utf-8 -*-
"""Bad input to the monitoring role fails before any change (see runner.run_role_preflight)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dbstack.ha.tests.integration.runner import (
    assert_past_preflight,
    assert_stopped_in_preflight,
    run_role_preflight,
)

GOOD = dict(monitoring_postgres_password="m" * 16, monitoring_pgbouncer_password="s" * 16)
STACK = {"postgres": ["pg1"], "pgbouncer": ["pgb1"], "redis": ["redis1"], "sentinel": ["redis1", "mon1"],
         "monitoring": ["mon1"]}
NO_REDIS = dict((group, hosts) for group, hosts in STACK.items() if group not in ("redis", "sentinel"))


@pytest.mark.parametrize("groups, extra, expected", [
    (NO_REDIS, {}, "Not in the inventory: redis, sentinel"),
    (STACK, dict(monitoring_groups=dict(postgres="postgres", pgbouncer="pgbouncer", redis="cache",
                                        sentinel="sentinel", server="monitoring")),
     "Not in the inventory: cache"),
    (STACK, dict(monitoring_alert_pgbouncer_down_for="5 minutes"),
     'monitoring_alert_pgbouncer_down_for = 5 minutes'),
    (STACK, dict(monitoring_scrape_interval="15"), "not Prometheus durations"),
    (STACK, dict(monitoring_postgres_password=""), "set monitoring_postgres_password"),
    (STACK, dict(monitoring_alert_connections_ratio=1.5), "monitoring_alert_connections_ratio must be in (0, 1]"),
    (STACK, dict(monitoring_redis_exporter_port=9100), "the exporter/server ports distinct"),
    (STACK, dict(monitoring_alertmanager_webhook_url="hooks.example.internal"),
     "monitoring_alertmanager_webhook_url must be an http(s) URL"),
])
def test_bad_input_fails_before_any_change(tmp_path, groups, extra, expected):
    rc, output = run_role_preflight(tmp_path, "dbstack.ha.monitoring", "stack", groups, dict(GOOD, **extra))
    assert_stopped_in_preflight(rc, output, expected, first_change="Install the exporters")


def test_a_part_left_out_with_an_empty_group_passes(tmp_path):
    groups = dict(monitoring_groups=dict(postgres="postgres", pgbouncer="pgbouncer", redis="", sentinel="",
                                         server="monitoring"))
    rc, output = run_role_preflight(tmp_path, "dbstack.ha.monitoring", "stack", NO_REDIS, dict(GOOD, **groups))
    assert_past_preflight(rc, output, first_change="Install the exporters")


def test_good_input_gets_past_the_preflight(tmp_path):
    rc, output = run_role_preflight(tmp_path, "dbstack.ha.monitoring", "stack", STACK, GOOD)
    assert_past_preflight(rc, output, first_change="Install the exporters")
