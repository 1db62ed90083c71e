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
Configuration: a JSON file (--config) with data_directory, fence_marker, passfile, user, connect_timeout and peers
[{host, port}]. Exit 0 to let it start, 1 to refuse (the reason goes to the journal).
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
                       "(site.yml -e postgres_ha_rejoin=true) or rebuild it, then remove the marker" % fence_marker)
    primaries = ["%s:%s" % (p["host"], p["port"]) for p in peers if p.get("primary") is True]
    if primaries:
        return False, ("%s already runs as the primary: starting this node as a primary too would make two writable "
                       "primaries. It is a former primary: rejoin it as a standby (site.yml -e "
                       "postgres_ha_rejoin=true) or rebuild it" % ", ".join(primaries))
    silent = ["%s:%s" % (p["host"], p["port"]) for p in peers if p.get("primary") is None]
    return True, "no other primary answers%s" % (" (no answer from %s)" % ", ".join(silent) if silent else "")


def ask_peer(peer, config):
    import psycopg  # pylint: disable=import-outside-toplevel
    try:
        with psycopg.connect(host=peer["host"], port=int(peer["port"]), user=config["user"], dbname="postgres",
                             passfile=config["passfile"], connect_timeout=int(config.get("connect_timeout", 3)),
                             sslmode="prefer", autocommit=True) as conn:
            return dict(peer, primary=not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])
    except Exception as exc:  # pylint: disable=broad-except
        return dict(peer, primary=None, error=str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    with open(args.config) as handle:
        config = json.load(handle)
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
