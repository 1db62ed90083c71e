"""A standby that is ahead of the one a failover promotes is rewound by rejoin.yml, not left unable to stream.

Against a lab with three PostgreSQL nodes (make lab, or the lab end-to-end's), P the primary, S1 and S2 standbys:
  1. PostgreSQL on S1 is stopped; ROWS sequence-numbered rows are written through PgBouncer (S2 receives them);
  2. P's host crashes (SIGKILL to its container's init); S1 is started again: it is now behind S2;
  3. playbooks/failover.yml -e failover_target=S1 -e failover_force=true: S1 is promoted although S2 has more WAL
     (the forced choice loses the rows S2 alone had), and the report names S2 among the standbys that hold WAL the
     new primary lacks - S2 is not repointed;
  4. P's container is started (its start guard keeps PostgreSQL down); playbooks/rejoin.yml: P is rewound, and
     S2 - running, on the old timeline past the fork - is stopped and rewound too (pg_standby_diverged);
  5. every standby streams from S1, on S1's timeline.
Prints what rejoin.yml reported for both and exits 1 when a step does not hold. Traffic goes only to the lab.

    python tests/lab/diverged_standby.py [--lab-name dbstack] [--rows 200]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys

import psycopg

import lablib  # tests/lablib.py (this directory holds a symlink to it)

PG_HOSTS = ("pg1", "pg2", "pg3")
SERVICE = "postgresql@15-main"
TABLE = "dbstack_diverged_probe"


def standbys_of(lab, primary):
    with psycopg.connect(lab.postgres_dsn(primary), autocommit=True) as conn:
        return sorted(r[0] for r in conn.execute(
            "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'").fetchall())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--lab-name", default=lablib.DEFAULT_LAB_NAME)
    parser.add_argument("--rows", type=int, default=200)
    args = parser.parse_args()
    if not 1 <= args.rows <= 100000:
        parser.error("--rows 1..100000")
    lab = lablib.Lab(args.lab_name)
    primary = lab.primary(PG_HOSTS)
    if primary is None:
        print("FAIL: no primary in the lab")
        return 1
    s1, s2 = [h for h in PG_HOSTS if h != primary]
    if standbys_of(lab, primary) != sorted([s1, s2]):
        print("FAIL: %s and %s must both stream from %s first" % (s1, s2, primary))
        return 1
    logdir = os.path.join(lablib.REPO, ".build", "diverged-standby")
    os.makedirs(logdir, exist_ok=True)
    print("primary %s; %s will be stopped and promoted behind %s" % (primary, s1, s2))

    with psycopg.connect(lab.pgbouncer_dsn(), autocommit=True, prepare_threshold=None) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS %s (seq int PRIMARY KEY)" % TABLE)
        conn.execute("TRUNCATE %s" % TABLE)
    with psycopg.connect(lab.postgres_dsn(primary), autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    with psycopg.connect(lab.postgres_dsn(s1), autocommit=True) as conn:
        replayed = lablib.wait_for(
            lambda: conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0], 30, 0.2)
        if not replayed:
            print("FAIL: %s did not replay the probe table within 30 s" % s1)
            return 1
    lab.exec_(s1, "systemctl stop %s" % SERVICE)
    with psycopg.connect(lab.pgbouncer_dsn(), autocommit=True, prepare_threshold=None) as conn:
        for seq in range(1, args.rows + 1):
            conn.execute("INSERT INTO %s (seq) VALUES (%%s)" % TABLE, (seq,))
    os.kill(lab.init_pid(primary), signal.SIGKILL)
    if lablib.wait_for(lambda: not lab.running(primary), 30, 0.1) is None:
        print("FAIL: %s's container still runs after SIGKILL to its init" % primary)
        return 1
    lab.exec_(s1, "systemctl start %s" % SERVICE)

    seconds, code, out = lab.playbook(os.path.join(lablib.REPO, "playbooks", "failover.yml"),
                                      "-e", "failover_target=%s" % s1, "-e", "failover_force=true")
    with open(os.path.join(logdir, "failover.log"), "w") as handle:
        handle.write(out)
    flat = re.sub(r"\s+", " ", out)
    print("failover.yml -> %s: rc %d in %.1f s" % (s1, code, seconds))
    ok = code == 0 and lab.primary(PG_HOSTS) == s1
    if not re.search(r"hold WAL the new primary lacks and need it too: %s" % s2, flat):
        print("FAIL: the failover report does not name %s as ahead of %s (see %s)" % (s2, s1, logdir))
        ok = False
    if not ok:
        print("FAIL: the failover to %s did not go as planned (see %s)" % (s1, logdir))
        return 1

    subprocess.run(["podman", "start", lab.container(primary)], stdout=subprocess.DEVNULL, check=True)
    state = lablib.wait_for(
        lambda: lab.exec_(primary, "systemctl is-active %s || true" % SERVICE).strip() in ("failed", "inactive"), 90, 1)
    if state is None or lab.primary(PG_HOSTS) != s1:
        print("FAIL: %s came back as a primary" % primary)
        return 1

    seconds, code, out = lab.playbook(os.path.join(lablib.REPO, "playbooks", "rejoin.yml"))
    with open(os.path.join(logdir, "rejoin.log"), "w") as handle:
        handle.write(out)
    flat = re.sub(r"\s+", " ", out)
    print("rejoin.yml: rc %d in %.1f s" % (code, seconds))
    ahead = re.search(r"%s is a standby ahead of the primary %s: (.+?)\. It is stopped" % (s2, s1), flat)
    rewound = dict((host, re.search(r"%s rejoins %s as a standby: (?:(?!rejoins).)*?pg_rewind: diverged at (\S+), rewound from the "
                                    r"common checkpoint at (\S+); the new primary never got (\S+) bytes of WAL "
                                    r"\((\S+) commits\)" % (host, s1), flat)) for host in (primary, s2))
    for host in (primary, s2):
        match = rewound[host]
        what = "rewound: diverged at %s, from checkpoint %s, %s bytes / %s commits past the fork" % match.groups() \
            if match else "NOT rewound"
        print("  %-4s %s" % (host, what))
    if ahead:
        print("  %s was found ahead: %s" % (s2, ahead.group(1).replace("''", "'")))
    streaming = lablib.wait_for(lambda: standbys_of(lab, s1) == sorted([primary, s2]) and True, 60, 1)
    print("standbys streaming from %s: %s" % (s1, ", ".join(standbys_of(lab, s1)) or "none"))
    with psycopg.connect(lab.postgres_dsn(s1, dbname=lablib.APP_DB), autocommit=True) as conn:
        kept = conn.execute("SELECT count(*) FROM %s" % TABLE).fetchone()[0]
    print("rows written while %s was down: %d, on the new primary %s: %d (a forced failover to a standby behind "
          "loses what only the other one had)" % (s1, args.rows, s1, kept))
    ok = code == 0 and ahead is not None and all(rewound.values()) and streaming is not None
    print("logs: %s" % logdir)
    print("PASS" if ok else "FAIL: the diverged standby was not rewound and streaming")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
