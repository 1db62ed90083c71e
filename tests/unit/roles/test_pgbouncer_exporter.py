# -*- coding: utf-8 -*-
"""The monitoring role's PgBouncer exporter against a fake admin console."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import os

import pytest

pq = pytest.importorskip("psycopg.pq")

PATH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "monitoring", "files",
                    "dbstack_pgbouncer_exporter.py")
SPEC = importlib.util.spec_from_file_location("dbstack_pgbouncer_exporter", PATH)
exporter = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(exporter)

# PgBouncer 1.18's column names (SHOW POOLS / STATS / DATABASES / LISTS / CONFIG), trimmed.
CONSOLE = {
    "POOLS": [{"database": "appdb", "user": "app", "cl_active": "3", "cl_waiting": "7", "sv_active": "3",
               "sv_idle": "0", "sv_used": "0", "sv_login": "0", "maxwait": "2", "maxwait_us": "500000"}],
    "STATS": [{"database": "appdb", "total_xact_count": "10", "total_query_count": "20", "total_received": "1",
               "total_sent": "2", "total_xact_time": "3000000", "total_query_time": "1000000",
               "total_wait_time": "500000"}],
    "DATABASES": [{"name": "appdb", "host": "pg1", "database": "appdb", "pool_size": "50", "reserve_pool": "10",
                   "max_connections": "0", "current_connections": "3", "paused": "0", "disabled": "0"}],
    "LISTS": [{"list": "used_clients", "items": "4"}],
    "CONFIG": [{"key": "max_client_conn", "value": "1000"}, {"key": "listen_port", "value": "6432"}],
}


class FakeResult(object):
    status = pq.ExecStatus.TUPLES_OK
    error_message = b""

    def __init__(self, rows):
        self.names = list(rows[0]) if rows else []
        self.rows = rows
        self.nfields = len(self.names)
        self.ntuples = len(rows)

    def fname(self, i):
        return self.names[i].encode()

    def get_value(self, r, c):
        return self.rows[r][self.names[c]].encode()


class FakeConn(object):
    status = pq.ConnStatus.OK
    error_message = b""
    finished = False

    def exec_(self, sql):
        return FakeResult(CONSOLE[sql.decode().split()[1]])

    def finish(self):
        FakeConn.finished = True


def test_metrics_from_the_console(monkeypatch):
    monkeypatch.setattr(exporter, "connect", FakeConn)
    text = exporter.collect()
    assert 'pgbouncer_pools_client_waiting_connections{database="appdb",user="app"} 7.0' in text
    assert 'pgbouncer_pools_client_maxwait_seconds{database="appdb",user="app"} 2.5' in text
    assert 'pgbouncer_stats_sql_transactions_pooled_total{database="appdb"} 10.0' in text
    assert 'pgbouncer_stats_queries_duration_seconds_total{database="appdb"} 1.0' in text
    assert 'pgbouncer_databases_pool_size{backend_database="appdb",database="appdb",host="pg1"} 50.0' in text
    assert 'pgbouncer_lists_items{list="used_clients"} 4.0' in text
    assert "pgbouncer_config_max_client_conn 1000.0" in text
    assert "pgbouncer_config_listen_port" not in text
    assert "pgbouncer_up 1.0" in text
    assert "# TYPE pgbouncer_stats_sql_transactions_pooled_total counter" in text
    assert FakeConn.finished


def test_console_down_is_up_zero_and_nothing_else(monkeypatch):
    class Refused(FakeConn):
        status = pq.ConnStatus.BAD
        error_message = b"connection to server on socket failed: No such file or directory"

    monkeypatch.setattr(exporter, "connect", Refused)
    text = exporter.collect()
    assert "pgbouncer_up 0.0" in text
    assert "pgbouncer_pools_" not in text


def test_label_values_are_escaped():
    metrics = exporter.Metrics()
    metrics.add("x", "gauge", "doc", 1, {"database": 'a"b\\c\nd'})
    assert 'x{database="a\\"b\\\\c\\nd"} 1.0' in metrics.render()
