"""Load acceptance through PgBouncer: pgbench, 0 failed transactions and 0 connection errors.

Runs `pgbench -i -s SCALE` through PgBouncer (which also proves the schema and
workload work in transaction pooling), then `pgbench -c CLIENTS -j JOBS -T SECONDS`
against the PgBouncer endpoint. With --lab it also, in the middle of the run,
issues a RELOAD and a repoint of the database to the same server under another
address (a real PAUSE / rewrite / RELOAD / RESUME) with dbstack.ha.pgbouncer_reload,
and points it back afterwards.

Exit codes: 0 pass, 1 failed transactions or connection errors, 2 endpoint
unreachable, 3 a required tool missing. The password comes from a file and
reaches pgbench through a 0600 pgpass file, never the command line.

    .venv/bin/python tests/load/pgbench_pgbouncer.py --lab              # the lab's pgb1, 500 x 30 s
    .venv/bin/python tests/load/pgbench_pgbouncer.py --host H --password-file F [--clients N --time S]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import lablib  # tests/lablib.py (this directory holds a symlink to it)


def disturb(lab, at_reload, at_repoint, started, log):
    """RELOAD, then repoint appdb to pg1's address (same server), while pgbench runs."""
    admin = lab.pgbouncer_admin_args()
    primary_ip = lab.address("pg1")
    time.sleep(max(0.0, at_reload - (time.monotonic() - started)))
    log.append(("reload", lab.module("dbstack.ha.pgbouncer_reload", admin, "pgb1")))
    time.sleep(max(0.0, at_repoint - (time.monotonic() - started)))
    log.append(("repoint", lab.module("dbstack.ha.pgbouncer_reload",
                                      dict(admin, databases=[dict(name="appdb", host=primary_ip, port=5432)]), "pgb1")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--lab", action="store_true", help="use the lab's pgb1 and its credentials")
    parser.add_argument("--lab-name", default=lablib.DEFAULT_LAB_NAME)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int, default=6432)
    parser.add_argument("--user", default="app")
    parser.add_argument("--db", default="appdb")
    parser.add_argument("--password-file")
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--time", type=int, default=30)
    parser.add_argument("--no-disturb", action="store_true", help="with --lab: no RELOAD / repoint during the run")
    parser.add_argument("--sslmode", default="require")
    args = parser.parse_args()
    if not (1 <= args.clients <= 2000 and 1 <= args.time <= 600):
        parser.error("--clients 1..2000 and --time 1..600 seconds")

    pgbench_bin, psql_bin = lablib.pg_tool("pgbench"), lablib.pg_tool("pg_isready")
    if not pgbench_bin or not psql_bin:
        print("FAIL: pgbench / pg_isready not found (install postgresql-client or postgresql-15)")
        return 3
    lab = lablib.Lab(args.lab_name) if args.lab else None
    if lab:
        args.host = args.host or lab.address("pgb1")
        args.password_file = args.password_file or os.path.join(lab.credentials, lablib.POSTGRES_APP[1])
    if not args.host or not args.password_file:
        parser.error("give --lab, or --host and --password-file")
    password = lablib.read_secret(args.password_file)

    workdir = tempfile.mkdtemp(prefix="dbstack-load-")
    pgpass = os.path.join(workdir, "pgpass")
    lablib.write_pgpass(pgpass, [lablib.pgpass_line(args.host, args.port, args.db, args.user, password)])
    env = dict(os.environ, PGPASSFILE=pgpass, PGSSLMODE=args.sslmode, PGCONNECT_TIMEOUT="10")
    try:
        ready = subprocess.run([psql_bin, "-h", args.host, "-p", str(args.port), "-d", args.db, "-U", args.user],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        if ready.returncode != 0:
            print("FAIL: endpoint %s:%d unreachable: %s" % (args.host, args.port, ready.stdout.strip()))
            return 2

        rc, out = lablib.pgbench(pgbench_bin, env, ["-i", "-s", str(args.scale), "-q"], args.host, args.port,
                                 args.user, args.db)
        if rc != 0:
            print(out)
            print("FAIL: pgbench -i through PgBouncer failed")
            return 1

        log = []
        worker = None
        started = time.monotonic()
        if lab and not args.no_disturb:
            worker = threading.Thread(target=disturb, args=(lab, args.time / 3.0, args.time * 2 / 3.0,
                                                            started, log), daemon=True)
            worker.start()
        rc, out = lablib.pgbench(pgbench_bin, env, ["-c", str(args.clients), "-j", str(args.jobs), "-T",
                                                    str(args.time), "-n", "--max-tries=1"],
                                 args.host, args.port, args.user, args.db)
        if worker:
            worker.join(120)
            # Point appdb back at the primary's name, as the role renders it.
            log.append(("restore", lab.module("dbstack.ha.pgbouncer_reload",
                                              dict(lab.pgbouncer_admin_args(),
                                                   databases=[dict(name="appdb", host="pg1", port=5432)]),
                                              "pgb1")))
        stats = lablib.parse_pgbench(out)
        print("\n".join(out.strip().splitlines()[-12:]))
        print("\nload: %d clients x %d s through %s:%d" % (args.clients, args.time, args.host, args.port))
        print("  transactions %s, failed %s, connection errors %d, tps %s, latency avg %s ms, pgbench rc %d"
              % (stats["processed"], stats["failed"], stats["connection_errors"], stats["tps"],
                 stats["latency_ms"], rc))
        disturbed_ok = True
        for name, result in log:
            ok = not result.get("failed")
            disturbed_ok = disturbed_ok and ok
            detail = "" if ok else result.get("msg")
            print("  %-8s %s changed=%s pause_ms=%s %s"
                  % (name, "ok" if ok else "FAILED", result.get("changed"), result.get("pause_ms"), detail))
        if (rc != 0 or stats["failed"] or stats["connection_errors"] or stats["aborted"] or not stats["processed"]
                or not disturbed_ok):
            print("FAIL")
            return 1
        print("PASS: 0 failed transactions, 0 connection errors")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
