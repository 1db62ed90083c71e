# -*- coding: utf-8 -*-
# Managed by dbstack.ha (role monitoring). Run by dbstack-pgbouncer-exporter.service
# as /usr/bin/python3 THIS_FILE.
"""Prometheus exporter for the PgBouncer admin console (dbstack.ha).

Debian bookworm's prometheus-pgbouncer-exporter 1.7 reads SHOW STATS columns
that PgBouncer removed in 1.8 (total_requests) and exits at start against
bookworm's PgBouncer 1.18, so the role ships this one instead.

Every scrape opens a fresh console connection (libpq settings from the
environment: PGHOST, PGPORT, PGUSER, PGPASSFILE), so a restarted PgBouncer is
picked up at once and a stopped one is reported as pgbouncer_up 0 while the
exporter itself stays up. Only the simple query protocol is used (the console
knows no other). Listens on DBSTACK_EXPORTER_LISTEN ([address]:port, default
:9127).
"""

from __future__ import absolute_import, division, print_function

import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from psycopg import pq

PREFIX = "pgbouncer"


def connect():
    return pq.PGconn.connect(b"dbname=pgbouncer connect_timeout=3 application_name=dbstack_exporter")


def show(conn, what):
    result = conn.exec_(("SHOW %s" % what).encode("ascii"))
    if result.status != pq.ExecStatus.TUPLES_OK:
        raise RuntimeError("SHOW %s: %s" % (what, (result.error_message or b"").decode("utf-8", "replace").strip()))
    names = [result.fname(i).decode("utf-8") for i in range(result.nfields)]
    rows = []
    for r in range(result.ntuples):
        row = {}
        for c, name in enumerate(names):
            value = result.get_value(r, c)
            row[name] = None if value is None else value.decode("utf-8", "replace")
        rows.append(row)
    return rows


def number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics(object):
    def __init__(self):
        self.families = {}

    def add(self, name, kind, doc, value, labels=None):
        if value is None:
            return
        family = self.families.setdefault(name, (kind, doc, []))
        family[2].append((labels or {}, value))

    def render(self):
        out = []
        for name in sorted(self.families):
            kind, doc, samples = self.families[name]
            out.append("# HELP %s %s" % (name, doc))
            out.append("# TYPE %s %s" % (name, kind))
            for labels, value in samples:
                label_text = ",".join('%s="%s"' % (k, escape(v)) for k, v in sorted(labels.items()))
                out.append("%s%s %s" % (name, "{%s}" % label_text if label_text else "", repr(float(value))))
        return "\n".join(out) + "\n"


POOL_GAUGES = [
    ("cl_active", "pools_client_active_connections", "Client connections linked to a server connection"),
    ("cl_waiting", "pools_client_waiting_connections", "Client connections waiting for a server connection"),
    ("sv_active", "pools_server_active_connections", "Server connections linked to a client"),
    ("sv_idle", "pools_server_idle_connections", "Server connections idle and ready"),
    ("sv_used", "pools_server_used_connections", "Server connections idle longer than server_check_delay"),
    ("sv_login", "pools_server_login_connections", "Server connections logging in"),
]
STATS_COUNTERS = [
    ("total_xact_count", "stats_sql_transactions_pooled_total", "SQL transactions pooled", 1),
    ("total_query_count", "stats_queries_pooled_total", "SQL queries pooled", 1),
    ("total_received", "stats_received_bytes_total", "Bytes received from clients", 1),
    ("total_sent", "stats_sent_bytes_total", "Bytes sent to clients", 1),
    ("total_xact_time", "stats_server_in_transaction_seconds_total", "Seconds spent in transactions", 1e-6),
    ("total_query_time", "stats_queries_duration_seconds_total", "Seconds spent running queries", 1e-6),
    ("total_wait_time", "stats_client_wait_seconds_total", "Seconds clients waited for a server", 1e-6),
]
DATABASE_GAUGES = [
    ("pool_size", "databases_pool_size", "Pool size of the database"),
    ("reserve_pool", "databases_reserve_pool", "Reserve pool size of the database"),
    ("max_connections", "databases_max_connections", "max_db_connections of the database (0 = no limit)"),
    ("current_connections", "databases_current_connections", "Server connections of the database"),
    ("paused", "databases_paused", "1 while the database is PAUSEd"),
    ("disabled", "databases_disabled", "1 while the database is DISABLEd"),
]


def collect():
    metrics = Metrics()
    started = time.time()
    up = 0
    conn = None
    try:
        conn = connect()
        if conn.status != pq.ConnStatus.OK:
            raise RuntimeError((conn.error_message or b"").decode("utf-8", "replace").strip())
        for row in show(conn, "POOLS"):
            labels = {"database": row.get("database"), "user": row.get("user")}
            for column, name, doc in POOL_GAUGES:
                metrics.add("%s_%s" % (PREFIX, name), "gauge", doc, number(row.get(column)), labels)
            wait = (number(row.get("maxwait")) or 0) + (number(row.get("maxwait_us")) or 0) / 1e6
            metrics.add(PREFIX + "_pools_client_maxwait_seconds", "gauge",
                        "Longest time a client has waited for a server connection", wait, labels)
        for row in show(conn, "STATS"):
            labels = {"database": row.get("database")}
            for column, name, doc, scale in STATS_COUNTERS:
                value = number(row.get(column))
                metrics.add("%s_%s" % (PREFIX, name), "counter", doc, None if value is None else value * scale, labels)
        for row in show(conn, "DATABASES"):
            labels = {"database": row.get("name"), "backend_database": row.get("database"), "host": row.get("host") or ""}
            for column, name, doc in DATABASE_GAUGES:
                metrics.add("%s_%s" % (PREFIX, name), "gauge", doc, number(row.get(column)), labels)
        for row in show(conn, "LISTS"):
            metrics.add(PREFIX + "_lists_items", "gauge", "SHOW LISTS counters", number(row.get("items")),
                        {"list": row.get("list")})
        for row in show(conn, "CONFIG"):
            if row.get("key") in ("max_client_conn", "default_pool_size", "reserve_pool_size"):
                metrics.add("%s_config_%s" % (PREFIX, row["key"]), "gauge", "PgBouncer setting %s" % row["key"],
                            number(row.get("value")))
        up = 1
    except Exception as exc:  # reported as pgbouncer_up 0, with the reason in the log
        metrics = Metrics()
        sys.stderr.write("scrape failed: %s\n" % exc)
    finally:
        if conn is not None:
            conn.finish()
    metrics.add(PREFIX + "_up", "gauge", "1 when the PgBouncer admin console answered", up)
    metrics.add(PREFIX + "_exporter_scrape_duration_seconds", "gauge", "Time the scrape took", time.time() - started)
    return metrics.render()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path.split("?")[0] != "/metrics":
            body = b"<html><body><a href=\"/metrics\">metrics</a></body></html>\n"
            ctype = "text/html"
        else:
            body = collect().encode("utf-8")
            ctype = "text/plain; version=0.0.4; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # no access log
        pass


def main():
    listen = os.environ.get("DBSTACK_EXPORTER_LISTEN", ":9127")
    host, _sep, port = listen.rpartition(":")
    server = ThreadingHTTPServer((host.strip("[]") or "0.0.0.0", int(port)), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
