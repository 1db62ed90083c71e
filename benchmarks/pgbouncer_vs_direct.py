"""The same pgbench workload direct to the primary and through PgBouncer, on the lab, in one run.

Prints TPS, average latency, initial connection time and failed transactions
for each, then the pause of a repoint (dbstack.ha.pgbouncer_reload: PAUSE,
rewrite, RELOAD, RESUME) issued while 500 clients run through PgBouncer.
Direct runs stay within the pool plan's direct budget (80 of max_connections 150),
which is why 500 clients only go through PgBouncer. Run `make lab` first;
traffic goes only to the lab's addresses, each run bounded by --time.

    .venv/bin/python benchmarks/pgbouncer_vs_direct.py [--time 20] [--lab-name dbstack]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time

import lablib  # tests/lablib.py (this directory holds a symlink to it)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--lab-name", default=lablib.DEFAULT_LAB_NAME)
    parser.add_argument("--time", type=int, default=20)
    args = parser.parse_args()
    if not 5 <= args.time <= 120:
        parser.error("--time must be 5..120 seconds")

    pgbench_bin = lablib.pg_tool("pgbench")
    if not pgbench_bin:
        raise SystemExit("pgbench not found")
    lab = lablib.Lab(args.lab_name)
    pg1, pgb1 = lab.address("pg1"), lab.address("pgb1")
    user, secret = lablib.POSTGRES_APP
    workdir = tempfile.mkdtemp(prefix="dbstack-bench-")
    pgpass = lablib.write_pgpass(os.path.join(workdir, "pgpass"),
                                 [lablib.pgpass_line("*", "*", lablib.APP_DB, user, lab.secret(secret))])
    env = dict(os.environ, PGPASSFILE=pgpass, PGSSLMODE="require", PGCONNECT_TIMEOUT="10")

    def run(host, port, clients, jobs):
        rc, out = lablib.pgbench(pgbench_bin, env, ["-c", str(clients), "-j", str(jobs), "-T", str(args.time), "-n",
                                                    "--max-tries=1"], host, port, "app", "appdb")
        stats = lablib.parse_pgbench(out)
        stats["rc"] = rc
        return stats

    try:
        rc, out = lablib.pgbench(pgbench_bin, env, ["-i", "-s", "10", "-q"], pgb1, 6432, "app", "appdb")
        if rc != 0:
            raise SystemExit("pgbench -i failed:\n" + out)
        rows = []
        # 80 = the pool plan's direct budget, (pool_size 10 + max_overflow 10) x 4 workers: PgBouncer
        # holds up to 60 more server connections of the 150.
        for clients, jobs in ((50, 4), (80, 4)):
            rows.append(("direct to the primary", clients, run(pg1, 5432, clients, jobs)))
            rows.append(("through PgBouncer", clients, run(pgb1, 6432, clients, jobs)))
        # 500 clients: only through PgBouncer, with a repoint in the middle.
        log = []
        admin = lab.pgbouncer_admin_args()

        def repoint():
            time.sleep(args.time / 2.0)
            log.append(lab.module("dbstack.ha.pgbouncer_reload",
                                  dict(admin, databases=[dict(name="appdb", host=pg1, port=5432)]), "pgb1"))
        thread = threading.Thread(target=repoint, daemon=True)
        thread.start()
        rows.append(("through PgBouncer + repoint", 500, run(pgb1, 6432, 500, 8)))
        thread.join(120)
        log.append(lab.module("dbstack.ha.pgbouncer_reload",
                              dict(admin, databases=[dict(name="appdb", host="pg1", port=5432)]), "pgb1"))

        print("\npgbench TPC-B, scale 10, %d s per run, sslmode=require (PgBouncer: transaction pooling, pool 50 + 10)"
              % args.time)
        print("%-30s %7s %9s %12s %12s %8s %6s" % ("", "clients", "tps", "latency ms", "connect ms", "failed", "conn err"))
        for name, clients, stats in rows:
            print("%-30s %7d %9.1f %12.1f %12.1f %8s %6d" % (
                name, clients, stats["tps"] or 0, stats["latency_ms"] or 0, stats["connection_ms"] or 0,
                stats["failed"], stats["connection_errors"]))
        for result in log:
            print("repoint under 500 clients: changed=%s pause_ms=%s %s" % (
                result.get("changed"), result.get("pause_ms"), result.get("msg", "")))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
