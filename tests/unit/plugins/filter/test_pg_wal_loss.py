# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dbstack.ha.plugins.filter.pg_wal_loss import pg_wal_loss


def test_wal_past_the_fork_is_counted():
    out = ("Type      N      (%)    Record size      (%)\n"
           "Transaction/COMMIT                             3 ( 50.00)                  102 ( 40.00)\n"
           "Total                                          6                          255 [100.00%]\n"
           "pg_waldump: error: error in WAL record at 0/5000300: invalid record length at 0/5000348: wanted 24, got 0")
    loss = pg_wal_loss(out, "0/5000148", 1)
    assert loss == dict(known=True, lost_bytes=0x200, lost_commits=3, end_lsn="0/5000348",
                        first_segment="000000010000000000000005")


def test_nothing_past_the_fork_is_no_loss():
    out = "pg_waldump: error: could not find a valid record after 0/5000148"
    assert pg_wal_loss(out, "0/5000148", 1)["lost_bytes"] == 0


def test_an_unreadable_fork_is_unknown_and_segments_roll_over_the_log_id():
    out = "pg_waldump: error: could not find file \"000000010000000100000000\": No such file or directory"
    loss = pg_wal_loss(out, "1/00000010", 1)
    assert loss["known"] is False and loss["lost_commits"] is None
    assert loss["first_segment"] == "000000010000000100000000"
    assert pg_wal_loss("pg_waldump: error: error in WAL record at 0/5FFFFD0: invalid magic number 0000 in WAL "
                       "segment 000000010000000000000006, LSN 0/6000000, offset 0", "0/5000148", 1)["end_lsn"] \
        == "0/6000000"


def test_a_list_of_lines_works_too():
    lines = ["Transaction/COMMIT    2 ( 50.00)    68 ( 40.00)",
             "pg_waldump: error: error in WAL record at 0/5000300: invalid record length at 0/5000400: wanted 24, got 0"]
    loss = pg_wal_loss(lines, "0/5000148", 1)
    assert loss["lost_commits"] == 2 and loss["lost_bytes"] == 0x400 - 0x148


def test_a_bad_prev_link_does_not_count_its_garbage_lsn():
    # A standby's recycled segment past its last record: the prev-link read there is old bytes, not a position.
    out = ("Transaction/COMMIT    200 ( 50.00)    6800 ( 40.00)\n"
           "pg_waldump: error: error in WAL record at 0/425C848: record with incorrect prev-link 6E6F7420/66696C65 "
           "at 0/425C880")
    loss = pg_wal_loss(out, "0/4254480", 5)
    assert loss["end_lsn"] == "0/425C880" and loss["lost_bytes"] == 0x425C880 - 0x4254480
