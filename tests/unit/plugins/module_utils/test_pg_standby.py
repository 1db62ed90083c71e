# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dbstack.ha.plugins.module_utils.pg_standby import (
    create_missing_slots,
    relax_sync,
    restore_sync,
    wait_replayed_past,
)


class FakeConn(object):
    """Answers the replay query from a list of (lsn, past) rows, and the slot queries from a set."""

    def __init__(self, replay=(), slots=(), sync_names=""):
        self.replay, self.slots, self.executed = list(replay), set(slots), []
        self.row, self.sync_names = None, sync_names

    def execute(self, sql, args=None):
        self.executed.append((sql, args))
        if "pg_last_wal_replay_lsn" in sql:
            self.row = self.replay.pop(0) if len(self.replay) > 1 else self.replay[0]
        elif "FROM pg_replication_slots" in sql:
            self.row = [(name,) for name in sorted(self.slots)]
        elif "pg_create_physical_replication_slot" in sql:
            self.slots.add(args[0])
        elif "current_setting('synchronous_standby_names')" in sql:
            self.row = (self.sync_names,)
        return self

    def fetchone(self):
        return self.row

    def fetchall(self):
        return self.row


def test_wait_replayed_past_polls_until_past_or_the_deadline():
    clock = iter([0.0, 0.1, 0.2, 0.3])
    conn = FakeConn([("0/10", False), ("0/20", False), ("0/30", True)])
    assert wait_replayed_past(conn, "0/20", 5, clock=lambda: next(clock), sleep=lambda s: None) == ("0/30", True)
    assert conn.executed[0][1] == ("0/20",)
    clock = iter([0.0, 1.0, 2.5])
    conn = FakeConn([("0/10", False)])
    assert wait_replayed_past(conn, "0/20", 2, clock=lambda: next(clock), sleep=lambda s: None) == ("0/10", False)


def test_create_missing_slots_makes_only_the_missing_ones():
    conn = FakeConn(slots={"pg1"})
    assert create_missing_slots(conn, ["pg1", "pg3"], dry_run=True) == ["pg3"] and conn.slots == {"pg1"}
    assert create_missing_slots(conn, ["pg1", "pg3"]) == ["pg3"] and conn.slots == {"pg1", "pg3"}
    assert create_missing_slots(conn, ["pg1", "pg3"]) == []


def sqls(conn):
    return [sql for sql, _args in conn.executed]


def test_relax_sync_empties_the_setting_only_when_it_is_set():
    conn = FakeConn(sync_names='FIRST 1 ("pg1", "pg2", "pg3")')
    assert relax_sync(conn, dry_run=True) == 'FIRST 1 ("pg1", "pg2", "pg3")'
    assert not [s for s in sqls(conn) if "ALTER SYSTEM" in s or "pg_reload_conf" in s]
    assert relax_sync(conn) == 'FIRST 1 ("pg1", "pg2", "pg3")'
    assert sqls(conn)[-2:] == ["ALTER SYSTEM SET synchronous_standby_names = ''", "SELECT pg_reload_conf()"]
    for empty in ("", "  "):
        conn = FakeConn(sync_names=empty)
        assert relax_sync(conn) is None and len(conn.executed) == 1


def test_restore_sync_resets_the_override_and_reloads():
    conn = FakeConn()
    restore_sync(conn)
    assert sqls(conn) == ["ALTER SYSTEM RESET synchronous_standby_names", "SELECT pg_reload_conf()"]
