# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: pg_wal_loss
short_description: How much WAL a former primary had past the fork - the data a failover lost
version_added: 0.2.0
description:
  - Reads the output of C(pg_waldump --timeline=OLD --start=SWITCHPOINT --stats=record) run on a former primary's WAL
    (its C(Transaction/COMMIT) count, and its last error line, which names where the WAL ends) and says how many
    bytes and commits it wrote after the point where the new primary's timeline forked from its own. Those never reached
    the new primary. Also names the first WAL segment file at or after the fork (the ones copied aside before
    pg_rewind).
options:
  _input:
    description: pg_waldump's standard output and standard error lines (a list), or both as one text.
    type: raw
    required: true
  switchpoint:
    description: Where the current primary's history left the old timeline (LSN).
    type: str
    required: true
  timeline:
    description: The former primary's timeline.
    type: int
    required: true
  segment_size:
    description: WAL segment size in bytes.
    type: int
    default: 16777216
author: dbstack.ha contributors
"""

EXAMPLES = r"""
- name: What the old primary had that the new one never got
  ansible.builtin.set_fact:
    loss: "{{ (waldump.stdout_lines + waldump.stderr_lines) | dbstack.ha.pg_wal_loss('0/5000148', 1) }}"
"""

RETURN = r"""
_value:
  description:
    - C(known) (false when pg_waldump could not read the WAL at the fork), C(lost_bytes), C(lost_commits),
      C(end_lsn) (where the former primary's WAL ends), C(first_segment) (the WAL file holding the fork).
  type: dict
"""

import re

_STOP = re.compile(r"\b(?:at|LSN) ([0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8})\b")


def _lsn(text):
    high, _sep, low = str(text).partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def pg_wal_loss(summary, switchpoint, timeline, segment_size=16777216):
    commits, error = 0, ""
    lines = summary if isinstance(summary, (list, tuple)) else str(summary or "").splitlines()
    for line in lines:
        line = str(line)
        fields = line.split()
        if len(fields) > 1 and fields[0] == "Transaction/COMMIT" and fields[1].isdigit():
            commits = int(fields[1])
        elif "pg_waldump: error" in line or "pg_waldump: fatal" in line:
            error = line[line.index("pg_waldump: "):]
    start = _lsn(switchpoint)
    segno = start // int(segment_size)
    per_id = 0x100000000 // int(segment_size)
    result = dict(known=True, lost_bytes=0, lost_commits=commits, end_lsn=switchpoint,
                  first_segment="%08X%08X%08X" % (int(timeline), segno // per_id, segno % per_id))
    if "could not find a valid record after" in error:
        return result
    if "could not find file" in error or "could not open" in error or not error:
        result.update(known=False, lost_commits=None, end_lsn="")
        return result
    match = re.search(r"invalid record length at (\S+?):", error)
    # Only positions where reading stopped ("at X", "LSN X"): a message such as "record with incorrect prev-link
    # 6E6F/746F at 0/425C880" (a recycled segment's old bytes, seen on a rewound standby) names garbage too.
    ends = [match.group(1)] if match else _STOP.findall(error)
    end = max([_lsn(e) for e in ends] + [start])
    result["lost_bytes"] = end - start
    result["end_lsn"] = "%X/%X" % (end >> 32, end & 0xFFFFFFFF)
    return result


class FilterModule(object):
    def filters(self):
        return {"pg_wal_loss": pg_wal_loss}
