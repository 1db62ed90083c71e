# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a standby is asked just before it is promoted (pg_promote, pg_switchover), on an open psycopg connection."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time


def wait_replayed_past(conn, lsn, timeout, poll=0.005, clock=time.monotonic, sleep=time.sleep):
    """Wait, at most timeout seconds, until replay is past LSN (a record that starts there is fully replayed).

    Returns (replayed_lsn, reached). timeout 0 asks once.
    """
    deadline = clock() + timeout
    while True:
        replayed, past = conn.execute("SELECT pg_last_wal_replay_lsn()::text, pg_last_wal_replay_lsn() > %s::pg_lsn",
                                      (lsn,)).fetchone()
        if past:
            return replayed, True
        if clock() >= deadline:
            return replayed, False
        sleep(poll)


def create_missing_slots(conn, names, dry_run=False):
    """Create the physical slots of NAMES that do not exist yet (reserving WAL at once); returns their names."""
    existing = set(row[0] for row in conn.execute("SELECT slot_name FROM pg_replication_slots").fetchall())
    missing = [name for name in names if name not in existing]
    if not dry_run:
        for name in missing:
            conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (name,))
    return missing


def relax_sync(conn, dry_run=False):
    """Empty synchronous_standby_names with ALTER SYSTEM (then reload), so that commits do not wait for a standby.

    Used across a primary change: the new primary's standbys are not connected yet, and with FIRST/ANY N every commit
    would hang until they are. postgres_ha's sync entry point resets the override once enough standbys stream.
    ALTER SYSTEM also works on a standby (it only writes postgresql.auto.conf). Returns the value it had, or None when
    it was empty already (nothing to do).
    """
    current = conn.execute("SELECT current_setting('synchronous_standby_names')").fetchone()[0] or ""
    if not current.strip():
        return None
    if not dry_run:
        conn.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
        conn.execute("SELECT pg_reload_conf()")
    return current


def restore_sync(conn):
    """Drop relax_sync's override (ALTER SYSTEM RESET, reload): the configuration file's value applies again."""
    conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
    conn.execute("SELECT pg_reload_conf()")
