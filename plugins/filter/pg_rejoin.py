# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: pg_rejoin_check
short_description: Decide whether a stopped former primary can follow the current primary without pg_rewind
version_added: 0.2.0
description:
  - The decision behind postgres_ha's rejoin (C(postgres_ha_rejoin=true)). A former primary may start as a standby of
    the current primary as it is only when it was shut down cleanly and its last checkpoint lies before the point
    where the current primary's timeline forked from its own (the history file's switchpoint) - as after a
    switchover, where the new primary replayed the old one's shutdown checkpoint before it was promoted.
  - Anything else is not C(ok), with the reason and the C(action) that brings it back - C(rewind) (a crash, or WAL
    past the fork; pg_rewind) or C(rebuild) (a timeline outside the current primary's history, or the current
    primary's own timeline; a fresh clone).
options:
  _input:
    description: The output of C(pg_controldata) on the stopped node.
    type: str
    required: true
  history:
    description: The current primary's timeline history file (C(pg_wal/0000000N.history)); empty on timeline 1.
    type: str
    required: true
  primary_timeline:
    description: The current primary's timeline.
    type: int
    required: true
author: dbstack.ha contributors
"""

EXAMPLES = r"""
- name: May pg1 follow pg2 as it is
  ansible.builtin.set_fact:
    rejoin: "{{ controldata.stdout | dbstack.ha.pg_rejoin_check(history, 2) }}"
"""

RETURN = r"""
_value:
  description:
    - C(ok), C(action) (C(follow), C(rewind) or C(rebuild)), C(reason), C(checkpoint) (LSN), C(timeline) (of the
      stopped node), C(switchpoint) (LSN where the current primary's history left that timeline), C(state)
      (pg_controldata's cluster state).
  type: dict
"""


def lsn_number(text):
    high, _sep, low = str(text).strip().partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def timeline_switchpoints(history):
    """A timeline history file -> {timeline: LSN where the history left it} (the fork of the next timeline)."""
    points = {}
    for line in (history or "").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit() and "/" in fields[1]:
            points[int(fields[0])] = fields[1]
    return points


def pg_controldata_facts(text):
    """pg_controldata's output -> {key: value}."""
    facts = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            facts[key.strip()] = value.strip()
    return facts


def pg_rejoin_check(controldata, history, primary_timeline):
    """Can a stopped former primary follow the current primary as it is, without pg_rewind?

    controldata: pg_controldata's output on the stopped node; history: the current primary's timeline history
    file (empty on timeline 1); primary_timeline: the current primary's timeline. Returns dict(ok, reason,
    checkpoint, timeline, switchpoint).
    """
    facts = pg_controldata_facts(controldata)
    state = facts.get("Database cluster state", "")
    result = dict(ok=False, action="rebuild", reason="", checkpoint=facts.get("Latest checkpoint location", ""),
                  timeline=None, switchpoint="", state=state)
    try:
        timeline = result["timeline"] = int(facts.get("Latest checkpoint's TimeLineID", ""))
        checkpoint = lsn_number(result["checkpoint"])
    except ValueError:
        result["reason"] = "pg_controldata did not give a checkpoint and a timeline: is this a PostgreSQL data directory?"
        return result
    switchpoints = timeline_switchpoints(history)
    if timeline == int(primary_timeline):
        result["reason"] = ("it is on the current primary's timeline %d but is not a standby of it: two primaries "
                            "were made from one timeline; rebuild it" % timeline)
        return result
    if timeline not in switchpoints:
        result["reason"] = ("its timeline %d is not in the current primary's history (timeline %s): it is not a former "
                            "primary of this cluster's lineage; rebuild it" % (timeline, primary_timeline))
        return result
    result["switchpoint"] = switchpoints[timeline]
    result["action"] = "rewind"
    if state != "shut down":
        result["reason"] = ("its cluster was not shut down cleanly (state: %s): it may hold WAL the new primary never "
                            "got past %s, where timeline %s forked from %d, so it needs pg_rewind" % (
                                state or "unknown", result["switchpoint"], primary_timeline, timeline))
        return result
    if checkpoint >= lsn_number(result["switchpoint"]):
        result["reason"] = ("its WAL goes past %s, where the current primary's timeline %s forked from %d (its last "
                            "checkpoint is at %s): it diverged and needs pg_rewind" % (
                                result["switchpoint"], primary_timeline, timeline, result["checkpoint"]))
        return result
    result.update(ok=True, action="follow", reason="shut down cleanly at %s, before the fork of timeline %s at %s" % (
        result["checkpoint"], primary_timeline, result["switchpoint"]))
    return result


class FilterModule(object):
    def filters(self):
        return {"pg_rejoin_check": pg_rejoin_check}
