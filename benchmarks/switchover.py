"""Planned switchover under load, against the lab (make lab first): playbooks/switchover.yml and back, then the
hand-run procedure as the baseline, in one run.

Load through PgBouncer (pgb1) for the whole run:
  pgbench   TPC-B, -c CLIENTS -j CLIENTS -T SECONDS, --max-tries=1 (a failed transaction is counted, never retried)
  writer    one sequence-numbered client (psycopg, autocommit, one INSERT per write) that reconnects after an error;
            every acknowledged sequence number is kept
Events (--at: the first this many seconds into the load, each next that many seconds after the one before has
finished; all must finish before the load ends - the playbook runs slower on a machine busy with the load):
  1     ansible-playbook playbooks/switchover.yml              (to the best standby)
  2     ansible-playbook playbooks/switchover.yml              (back)
  3     the hand-run baseline (--no-hand skips it): empty synchronous_standby_names on the target (ALTER SYSTEM,
        before the freeze), PAUSE appdb on PgBouncer, stop the primary, SELECT pg_promote(),
        rewrite [databases] with sed, RELOAD, RESUME - as REFERENCE.md's "planned switchover by hand" (745 ms); it
        leaves the old primary stopped and the other PgBouncers and standbys where they were, so afterwards
        postgres_ha rejoins it (postgres_ha_rejoin=true), the other standbys follow and the pgbouncer role
        repoints every PgBouncer.
Prints per switchover: the client-visible write freeze (the writer's longest gap between two acknowledged writes
around the event), failed writes, the playbook's wall time; then pgbench's failed transactions and connection errors,
and acknowledged writes lost (acknowledged sequence numbers missing on the final primary). Goals (issue 12): 0 failed
transactions, freeze <= 1 s, 0 acknowledged writes lost.

    python benchmarks/switchover.py [--lab-name dbstack] [--clients 50] [--time 300] [--at 20,15,15] [--no-hand]

Traffic goes only to the lab's addresses; every loop is bounded by --time. Exit 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

import psycopg

import lablib  # tests/lablib.py (this directory holds a symlink to it)

PG_HOSTS = ("pg1", "pg2", "pg3")
SERVICE = "postgresql@15-main"
REFERENCE = [("planned switchover by hand (REFERENCE.md, TPC-B c=20)", "745 ms freeze, 0 failed"),
             ("Patroni API switchover", "new leader within 5 s"),
             ("CloudNativePG e2e", "switchover < 20 s")]


class Writer(threading.Thread):
    """Sequence-numbered writes through PgBouncer; acknowledged numbers with their times."""

    def __init__(self, dsn, deadline):
        super().__init__(daemon=True)
        self.dsn, self.deadline = dsn, deadline
        self.acked = []  # (monotonic time, seq)
        self.errors = []  # (monotonic time, message)

    def run(self):
        seq, conn = 0, None
        while time.monotonic() < self.deadline:
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn, autocommit=True, prepare_threshold=None)
                seq += 1
                conn.execute("INSERT INTO dbstack_switchover_probe (seq) VALUES (%s)", (seq,))
                self.acked.append((time.monotonic(), seq))
            except psycopg.Error as exc:
                self.errors.append((time.monotonic(), str(exc).strip().splitlines()[0] if str(exc).strip() else "?"))
                try:
                    if conn is not None:
                        conn.close()
                except psycopg.Error:
                    pass
                conn = None
                time.sleep(0.01)
        if conn is not None:
            conn.close()

    def freeze_around(self, start, end):
        """The longest gap between two acknowledged writes overlapping [start, end], and the errors in it."""
        times = [t for t, _s in self.acked]
        gaps = [(b - a, a, b) for a, b in zip(times, times[1:]) if b >= start and a <= end]
        gap = max(gaps) if gaps else (None, None, None)
        errors = [e for t, e in self.errors if (gap[1] or start) <= t <= (gap[2] or end)]
        return gap[0], errors


def primary_of(lab):
    return lab.primary(PG_HOSTS)


def playbook(lab, path, *extra):
    return lab.playbook(path, *extra)


def hand_switchover(lab, old, new):
    """REFERENCE.md's hand procedure: PAUSE, stop, promote, sed, RELOAD, RESUME (no checks at all)."""
    admin = lablib.conninfo(host=lab.address("pgb1"), port=6432, dbname="pgbouncer", user=lablib.PGBOUNCER_ADMIN[0],
                            password=lab.secret(lablib.PGBOUNCER_ADMIN[1]), sslmode="require")
    # With synchronous replication the new primary would make every commit wait for standbys that are not
    # connected to it yet: empty its synchronous_standby_names first (before the freeze, as the playbook does).
    with psycopg.connect(lab.postgres_dsn(new), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
        conn.execute("SELECT pg_reload_conf()")
    start = time.monotonic()
    with psycopg.connect(admin, autocommit=True) as console:
        console.pgconn.exec_(b"PAUSE appdb")
        lablib.run(["podman", "exec", lab.container(old), "systemctl", "stop", SERVICE])
        with psycopg.connect(lab.postgres_dsn(new), autocommit=True) as conn:
            conn.execute("SELECT pg_promote(true, 60)")
        lablib.run(["podman", "exec", lab.container("pgb1"), "sed", "-i",
                    "s/^appdb = host=%s /appdb = host=%s /" % (old, new), "/etc/pgbouncer/pgbouncer.ini"])
        console.pgconn.exec_(b"RELOAD")
        console.pgconn.exec_(b"RESUME appdb")
    return time.monotonic() - start


REJOIN = """- hosts: postgres
  gather_facts: true
  gather_subset: [min, network]
  become: true
  roles:
    - role: dbstack.ha.postgres_ha
      postgres_ha_rejoin: true
- hosts: pgbouncer
  gather_facts: true
  gather_subset: [min, network]
  become: true
  roles:
    - role: dbstack.ha.pgbouncer
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--lab-name", default=lablib.DEFAULT_LAB_NAME)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--time", type=int, default=300)
    parser.add_argument("--at", default="20,15,15")
    parser.add_argument("--no-hand", action="store_true", help="skip the hand-run baseline")
    args = parser.parse_args()
    at = [float(x) for x in args.at.split(",")]
    if not (1 <= args.clients <= 500 and 30 <= args.time <= 900 and len(at) == 3 and all(0 < x < args.time for x in at)):
        parser.error("--clients 1..500, --time 30..900, three --at delays inside it")
    lab = lablib.Lab(args.lab_name)
    first = primary_of(lab)
    if first is None:
        print("FAIL: no primary in the lab (make lab)")
        return 1
    dsn = lab.pgbouncer_dsn()
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS dbstack_switchover_probe (seq bigint PRIMARY KEY, at timestamptz "
                     "NOT NULL DEFAULT clock_timestamp())")
        conn.execute("TRUNCATE dbstack_switchover_probe")

    workdir = tempfile.mkdtemp(prefix="dbstack-switchover-")
    logdir = os.path.join(lablib.REPO, ".build", "bench-switchover")
    os.makedirs(logdir, exist_ok=True)
    pgbench_bin = lablib.pg_tool("pgbench")
    host = lab.address("pgb1")
    pgpass = os.path.join(workdir, "pgpass")
    lablib.write_pgpass(pgpass, [lablib.pgpass_line(host, 6432, lablib.APP_DB, "app", lab.secret(lablib.POSTGRES_APP[1]))])
    env = dict(os.environ, PGPASSFILE=pgpass, PGSSLMODE="require", PGCONNECT_TIMEOUT="10")
    rejoin = os.path.join(workdir, "rejoin.yml")
    with open(rejoin, "w") as handle:
        handle.write(REJOIN)
    try:
        rc, out = lablib.pgbench(pgbench_bin, env, ["-i", "-s", "5", "-q"], host, 6432, "app", lablib.APP_DB)
        if rc != 0:
            print(out)
            print("FAIL: pgbench -i through PgBouncer")
            return 1
        events, results = [], {}
        started = time.monotonic()
        writer = Writer(dsn, started + args.time)

        def driver():
            last = started
            for index, wait in enumerate(at):
                time.sleep(max(0.0, wait - (time.monotonic() - last)))
                old = primary_of(lab)
                t0 = time.monotonic()
                if index < 2:
                    seconds, code, output = playbook(lab, os.path.join(lablib.REPO, "playbooks", "switchover.yml"))
                    name = "switchover.yml %s -> %s" % (old, primary_of(lab))
                    with open(os.path.join(logdir, "switchover%d.log" % (index + 1)), "w") as handle:
                        handle.write(output)
                else:
                    if args.no_hand:
                        continue
                    new = [h for h in PG_HOSTS if h != old][0]
                    seconds, code = hand_switchover(lab, old, new), 0
                    name = "by hand %s -> %s (baseline)" % (old, new)
                last = time.monotonic()
                events.append(dict(name=name, start=t0, end=last, seconds=seconds, rc=code))

        events_done = threading.Thread(target=driver, daemon=True)
        events_done.start()
        writer.start()
        rc, out = lablib.pgbench(pgbench_bin, env, ["-c", str(args.clients), "-j", str(args.clients), "-T",
                                                    str(args.time), "-n", "--max-tries=1"], host, 6432, "app",
                                 lablib.APP_DB)
        writer.join(30)
        events_done.join(300)
        if events_done.is_alive() or len(events) < (2 if args.no_hand else 3):
            print("FAIL: the switchovers did not all finish inside the load (%d of them did): raise --time" % len(events))
            return 1
        stats = lablib.parse_pgbench(out)
        final = primary_of(lab)
        acked = [s for _t, s in writer.acked]
        with psycopg.connect(lab.postgres_dsn(final, dbname=lablib.APP_DB), autocommit=True) as conn:
            stored = set(r[0] for r in conn.execute("SELECT seq FROM dbstack_switchover_probe").fetchall())
        lost = [s for s in acked if s not in stored]

        print("\n== switchover under pgbench c=%d -j%d for %d s through PgBouncer, switches %s s apart ==" % (
            args.clients, args.clients, args.time, args.at))
        print("%-40s %12s %12s %10s %s" % ("event", "freeze ms", "failed wr", "wall s", "rc"))
        ok = True
        for event in events:
            freeze, errors = writer.freeze_around(event["start"], event["end"])
            results[event["name"]] = freeze
            print("%-40s %12s %12d %10.1f %d" % (event["name"][:40], "%.0f" % (freeze * 1000) if freeze else "?",
                                                 len(errors), event["seconds"], event["rc"]))
            if errors:
                print("    writer errors: %s" % "; ".join(sorted(set(errors)))[:400])
            if "baseline" not in event["name"]:
                ok = ok and event["rc"] == 0 and freeze is not None and freeze <= 1.0
        print("\npgbench: %s transactions, %s failed, %d connection errors, %d aborted, tps %s, rc %d" % (
            stats["processed"], stats["failed"], stats["connection_errors"], stats["aborted"], stats["tps"], rc))
        print("writer: %d writes acknowledged, %d lost (acknowledged but missing on %s), %d failed attempts" % (
            len(acked), len(lost), final, len(writer.errors)))
        print("\nbaselines: " + "; ".join("%s: %s" % item for item in REFERENCE))
        ok = ok and rc == 0 and not stats["failed"] and not stats["connection_errors"] and not stats["aborted"] \
            and not lost and len(events) >= 2
        if not args.no_hand:
            seconds, code, output = playbook(lab, rejoin)
            with open(os.path.join(logdir, "rejoin.log"), "w") as handle:
                handle.write(output)
            print("after the hand switchover: postgres_ha rejoined the stopped old primary (rc %d, %.1f s)" % (
                code, seconds))
            ok = ok and code == 0
        print("playbook logs: %s" % logdir)
        print("PASS" if ok else "FAIL: a goal was missed (0 failed transactions, freeze <= 1 s, 0 lost)")
        return 0 if ok else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
