# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dbstack.ha.plugins.module_utils.pg_standby import create_missing_slots, wait_replayed_past


class FakeConn(object):
    """Answers the replay query from a list of (lsn, past) rows, and the slot queries from a set."""

    def __init__(self, replay=(), slots=()):
        self.replay, self.slots, self.executed = list(replay), set(slots), []
        self.row = None

    def execute(self, sql, args=None):
        self.executed.append((sql, args))
        if "pg_last_wal_replay_lsn" in sql:
            self.row = self.replay.pop(0) if len(self.replay) > 1 else self.replay[0]
        elif "FROM pg_replication_slots" in sql:
            self.row = [(name,) for name in sorted(self.slots)]
        elif "pg_create_physical_replication_slot" in sql:
            self.slots.add(args[0])
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
