"""How long a promotion takes on the lab: dbstack.ha.pg_promote next to a bare pg_promote().

For each run the lab's standby (pg2) is rebuilt from the primary (pg1) with
pg_basebackup through its slot, a writer connected to pg2 retries an INSERT
every millisecond, and the clock runs from the promotion call to the writer's
first committed INSERT on pg2:

  module  `ansible pg2 -m dbstack.ha.pg_promote` (become postgres, local socket,
          force=true since pg1 is still up) - what an operator runs
  bare    `SELECT pg_promote()` (wait => true, 60 s) over a connection opened
          beforehand - the floor

Prints min / median / max of each, the module's own elapsed_ms, and the
ratio of the medians. Run `make lab` first. Traffic goes only to the lab's
container addresses, in loops bounded by count and time.

    .venv/bin/python benchmarks/pg_promote.py [--runs 5] [--lab-name dbstack]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import psycopg

import lablib  # tests/lablib.py (this directory holds a symlink to it)

WRITE_TIMEOUT = 30.0  # seconds a writer keeps trying before the run counts as failed


def rebuild_standby(lab, primary="pg1", standby="pg2"):
    """pg2 becomes a fresh streaming standby of pg1 again (through its slot)."""
    lab.exec_(standby, "systemctl stop postgresql@15-main")
    lab.exec_(standby, """
        rm -rf /var/lib/postgresql/15/main && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/15/main
        su postgres -c 'PGPASSFILE=/var/lib/postgresql/.dbstack_replication.pgpass PGSSLMODE=verify-full \
          PGSSLROOTCERT=/etc/postgresql/dbstack-tls/ca.crt PGAPPNAME=pg2 \
          /usr/lib/postgresql/15/bin/pg_basebackup -h pg1 -U replicator -D /var/lib/postgresql/15/main \
          -X stream -S pg2 -c fast --no-password'
        touch /var/lib/postgresql/15/main/standby.signal && chown postgres: /var/lib/postgresql/15/main/standby.signal
    """)
    lab.exec_(standby, "systemctl start postgresql@15-main")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = lab.exec_(primary, "su postgres -c \"psql -XAtqc \\\"SELECT count(*) FROM pg_stat_replication "
                                 "WHERE application_name = 'pg2' AND state = 'streaming'\\\"\"")
        if out.strip() == "1":
            return
        time.sleep(0.2)
    raise RuntimeError("pg2 did not stream again within 60 s")


class Writer(threading.Thread):
    """Retries an INSERT on the standby until one commits; records when."""

    def __init__(self, dsn):
        super().__init__(daemon=True)
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("SELECT 1")
        self.go = threading.Event()
        self.first_write = None
        self.attempts = 0

    def run(self):
        self.go.wait()
        deadline = time.monotonic() + WRITE_TIMEOUT
        while time.monotonic() < deadline:
            self.attempts += 1
            try:
                self.conn.execute("INSERT INTO bench_promote (at) VALUES (now())")
                self.first_write = time.monotonic()
                return
            except psycopg.errors.ReadOnlySqlTransaction:
                time.sleep(0.001)

    def close(self):
        self.conn.close()


def timed(promote, dsn):
    writer = Writer(dsn)
    writer.start()
    start = time.monotonic()
    writer.go.set()
    info = promote()
    writer.join(WRITE_TIMEOUT + 5)
    writer.close()
    if writer.first_write is None:
        raise RuntimeError("no write succeeded on the promoted node within %.0f s" % WRITE_TIMEOUT)
    return (writer.first_write - start) * 1000.0, info


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lab-name", default=lablib.DEFAULT_LAB_NAME)
    args = parser.parse_args()
    if not 1 <= args.runs <= 50:
        parser.error("--runs must be between 1 and 50")

    lab = lablib.Lab(args.lab_name)
    dsn = lab.postgres_dsn("pg2")
    with psycopg.connect(lab.postgres_dsn("pg1"), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_promote (id bigserial PRIMARY KEY, at timestamptz)")

    def module_promote():
        result = lab.module("dbstack.ha.pg_promote", dict(login_unix_socket=lablib.PG_SOCKET_DIR, force=True), "pg2",
                            become_user="postgres")
        assert result.get("promoted"), result
        return result["elapsed_ms"]

    def bare_promote():
        with psycopg.connect(dsn, autocommit=True) as conn:
            start = time.monotonic()
            ok = conn.execute("SELECT pg_promote()").fetchone()[0]
            assert ok
            return (time.monotonic() - start) * 1000.0

    results = {"module": [], "bare": []}
    inner = {"module": [], "bare": []}
    for run in range(args.runs):
        for name, promote in (("bare", bare_promote), ("module", module_promote)):
            rebuild_standby(lab)
            total, own = timed(promote, dsn)
            results[name].append(total)
            inner[name].append(own)
            print("run %d %-6s first write after %8.1f ms (call itself %.1f ms)" % (run + 1, name, total, own),
                  flush=True)
    rebuild_standby(lab)  # leave the lab as it was: pg2 a streaming standby

    print("\npromotion -> first successful INSERT on the promoted node, %d runs each" % args.runs)
    print("%-38s %9s %9s %9s" % ("", "min ms", "median", "max"))
    for name, label in (("bare", "bare SELECT pg_promote() (wait=>true)"), ("module", "dbstack.ha.pg_promote via ansible")):
        values = results[name]
        print("%-38s %9.1f %9.1f %9.1f" % (label, min(values), statistics.median(values), max(values)))
    own = inner["module"]
    print("%-38s %9.1f %9.1f %9.1f" % ("pg_promote module's own elapsed_ms", min(own), statistics.median(own), max(own)))
    print("module / bare (medians): %.1fx" % (statistics.median(results["module"]) / statistics.median(results["bare"])))


if __name__ == "__main__":
    main()
