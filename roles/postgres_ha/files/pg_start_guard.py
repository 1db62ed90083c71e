# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dbstack.ha start guard: a former primary never comes back writable by itself.

Run by systemd before PostgreSQL starts (ExecStartPre of the postgres_ha drop-in), as the cluster's owner. A cluster
that will start as a standby (standby.signal) or does not exist yet always may start. One that would start as a
primary may not when:
  - a fence marker is set (failover.yml, or an operator, fenced this node), or
  - another PostgreSQL node of the cluster answers as a primary: two writable primaries (split brain).
A peer that does not answer is not a primary as far as this guard knows; without a fence marker the node starts.
Configuration: a JSON file (--config) with data_directory, fence_marker, passfile, user, connect_timeout, peers
[{host, port}], and for --watch socket_dir, port and pg_ctl. Exit 0 to let it start, 1 to refuse (the reason goes to
the journal).

With --watch it runs for good (a systemd service, as the cluster's owner) and every --interval seconds asks, while
this node runs as a primary, whether a peer runs as a primary on a higher timeline - a failover happened while this
node was cut off or frozen, and the partition healed. Then this node is the stale one: it sets the fence marker and
stops PostgreSQL (fast shutdown), so two writable primaries never stay side by side.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import sys


def decide(standby_signal, exists, fence_marker, peers):
    """(may_start, reason). peers: [{host, port, primary: True/False/None (no answer), error}]."""
    if not exists:
        return True, "no cluster yet"
    if standby_signal:
        return True, "starts as a standby"
    if fence_marker is not None:
        return False, ("this node was fenced (%s): it must not start as a primary. Rejoin it as a standby "
                       "(playbooks/rejoin.yml, or site.yml -e postgres_ha_rejoin=true), which removes the marker" % fence_marker)
    primaries = ["%s:%s" % (p["host"], p["port"]) for p in peers if p.get("primary") is True]
    if primaries:
        return False, ("%s already runs as the primary: starting this node as a primary too would make two writable "
                       "primaries. It is a former primary: rejoin it as a standby (playbooks/rejoin.yml, or site.yml "
                       "-e postgres_ha_rejoin=true)" % ", ".join(primaries))
    silent = ["%s:%s" % (p["host"], p["port"]) for p in peers if p.get("primary") is None]
    return True, "no other primary answers%s" % (" (no answer from %s)" % ", ".join(silent) if silent else "")


def decide_watch(local_timeline, peers):
    """(demote, reason) for a node running as primary on local_timeline; peers as for decide(), with timeline."""
    higher = sorted((p for p in peers if p.get("primary") is True and (p.get("timeline") or 0) > local_timeline),
                    key=lambda p: -(p.get("timeline") or 0))
    if higher:
        return True, ("%s:%s runs as the primary on timeline %s, after this node's timeline %s: a failover happened "
                      "while this node was cut off. Stopped and fenced; rejoin it as a standby (playbooks/rejoin.yml)"
                      % (higher[0]["host"], higher[0]["port"], higher[0]["timeline"], local_timeline))
    same = ["%s:%s" % (p["host"], p["port"]) for p in peers if p.get("primary") is True]
    if same:
        top = max(p.get("timeline") or 0 for p in peers if p.get("primary") is True)
        return False, ("%s also runs as a primary, on timeline %s or lower: this node (timeline %s) stays; check "
                       "with playbooks/health.yml" % (", ".join(same), top, local_timeline))
    return False, ""


TIMELINE = ("SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN NULL ELSE "
            "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END")


def ask_peer(peer, config):
    import psycopg  # pylint: disable=import-outside-toplevel
    try:
        with psycopg.connect(host=peer["host"], port=int(peer["port"]), user=config["user"], dbname="postgres",
                             passfile=config["passfile"], connect_timeout=int(config.get("connect_timeout", 3)),
                             sslmode="prefer", autocommit=True) as conn:
            in_recovery, timeline = conn.execute(TIMELINE).fetchone()
            return dict(peer, primary=not in_recovery, timeline=timeline)
    except Exception as exc:  # pylint: disable=broad-except
        return dict(peer, primary=None, error=str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))


def local_timeline(config):
    """This node's timeline while it runs as a primary; None when it is down, a standby, or does not answer."""
    import psycopg  # pylint: disable=import-outside-toplevel
    try:
        with psycopg.connect(host=config.get("socket_dir", "/var/run/postgresql"), port=int(config.get("port", 5432)),
                             dbname="postgres", connect_timeout=3, autocommit=True) as conn:
            in_recovery, timeline = conn.execute(TIMELINE).fetchone()
            return None if in_recovery else timeline
    except Exception:  # pylint: disable=broad-except
        return None


def fence(config, reason):
    import datetime  # pylint: disable=import-outside-toplevel
    import subprocess  # pylint: disable=import-outside-toplevel
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(config["fence_marker"], "w") as handle:
        handle.write("fenced by the dbstack watchdog at %s: %s\n" % (stamp, reason))
    subprocess.call([config.get("pg_ctl", "pg_ctl"), "stop", "-D", config["data_directory"], "-m", "fast", "-w",
                     "-t", "60"])


def watch(config, interval, rounds=None):
    import time  # pylint: disable=import-outside-toplevel
    done = 0
    last = None
    while rounds is None or done < rounds:
        done += 1
        data = config["data_directory"]
        if os.path.exists(os.path.join(data, "postmaster.pid")) and \
                not os.path.exists(os.path.join(data, "standby.signal")):
            timeline = local_timeline(config)
            if timeline is not None:
                demote, reason = decide_watch(timeline, [ask_peer(p, config) for p in config.get("peers", [])])
                if reason and reason != last:
                    print("dbstack watchdog: %s%s" % ("STOPPING: " if demote else "", reason), file=sys.stderr)
                    sys.stderr.flush()
                last = reason
                if demote:
                    fence(config, reason)
        time.sleep(interval)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--watch", action="store_true", help="run for good, stopping this node if it is a stale primary")
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args(argv)
    with open(args.config) as handle:
        config = json.load(handle)
    if args.watch:
        return watch(config, args.interval)
    data = config["data_directory"]
    exists = os.path.exists(os.path.join(data, "PG_VERSION"))
    signal = os.path.exists(os.path.join(data, "standby.signal"))
    marker = None
    if config.get("fence_marker") and os.path.exists(config["fence_marker"]):
        with open(config["fence_marker"]) as handle:
            marker = handle.read().strip() or config["fence_marker"]
    peers = [ask_peer(p, config) for p in config.get("peers", [])] if exists and not signal and marker is None else []
    may_start, reason = decide(signal, exists, marker, peers)
    print("dbstack start guard: %s: %s" % ("start" if may_start else "REFUSED", reason), file=sys.stderr)
    return 0 if may_start else 1


if __name__ == "__main__":
    sys.exit(main())
