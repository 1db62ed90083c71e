# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: pg_standby_diverged
short_description: Decide whether a running standby holds WAL past the current primary's fork (it needs pg_rewind)
version_added: 0.2.0
description:
  - After a failover to a standby that had received less WAL than another, that other standby is I(ahead) of the
    new primary - it replayed WAL of the old timeline past the point where the new primary's timeline forked.
    Pointed at the new primary it cannot stream (its WAL receiver fails); it must be rewound like a former primary.
  - A standby is diverged when its timeline is in the current primary's history and its replay position is past the
    switchpoint where the history left that timeline. A standby on the primary's own timeline is not. A timeline
    outside the history, or higher than the primary's, is reported as not of this lineage (diverged, action rebuild).
  - Used by postgres_ha (with C(postgres_ha_rejoin=true)) on running standbys; the rejoin then rewinds them.
options:
  _input:
    description: The standby's timeline (the highest of its checkpoint's, minimum recovery point's and WAL receiver's).
    type: int
    required: true
  replay_lsn:
    description: The standby's last replayed LSN (C(pg_last_wal_replay_lsn())).
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
- name: Has pg3 gone past pg2's fork
  ansible.builtin.set_fact:
    diverged: "{{ 1 | dbstack.ha.pg_standby_diverged('0/5000148', history, 2) }}"
"""

RETURN = r"""
_value:
  description:
    - C(diverged) (bool), C(action) (C(follow), C(rewind) or C(rebuild)), C(reason), C(timeline), C(replay_lsn),
      C(switchpoint) (where the primary's history left the standby's timeline, empty when not in it),
      C(ahead_bytes) (how far past the switchpoint it replayed; 0 when not diverged).
  type: dict
"""

from ansible_collections.dbstack.ha.plugins.filter.pg_rejoin import lsn_number, timeline_switchpoints


def pg_standby_diverged(timeline, replay_lsn, history, primary_timeline):
    """Whether a running standby replayed past the fork of the current primary's timeline from its own."""
    timeline, primary_timeline = int(timeline), int(primary_timeline)
    result = dict(diverged=False, action="follow", reason="", timeline=timeline, replay_lsn=str(replay_lsn or ""),
                  switchpoint="", ahead_bytes=0)
    if timeline == primary_timeline:
        result["reason"] = "on the primary's timeline %d" % timeline
        return result
    points = timeline_switchpoints(history)
    if timeline > primary_timeline or timeline not in points:
        result.update(diverged=True, action="rebuild", reason=(
            "its timeline %d is not in the current primary's history (timeline %d): not of this cluster's lineage"
            % (timeline, primary_timeline)))
        return result
    result["switchpoint"] = points[timeline]
    try:
        ahead = lsn_number(replay_lsn) - lsn_number(points[timeline])
    except ValueError:
        result.update(diverged=True, action="rewind", reason="no replay position (%r) to compare with the fork at %s"
                      % (replay_lsn, points[timeline]))
        return result
    if ahead > 0:
        result.update(diverged=True, action="rewind", ahead_bytes=ahead, reason=(
            "it replayed timeline %d up to %s, %d bytes past %s where the primary's timeline %d forked from it: "
            "it holds WAL the primary never had" % (timeline, replay_lsn, ahead, points[timeline], primary_timeline)))
        return result
    result["reason"] = ("on timeline %d at %s, not past the fork at %s: it can follow timeline %d"
                        % (timeline, replay_lsn, points[timeline], primary_timeline))
    return result


class FilterModule(object):
    def filters(self):
        return {"pg_standby_diverged": pg_standby_diverged}
