# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: pg_switchover_plan
short_description: Decide a planned switchover - the target, the followers, and every reason to refuse
version_added: 0.2.0
description:
  - The decision behind C(playbooks/switchover.yml), taken before anything changes. The current primary comes from
    dbstack.ha.pg_current_primary (exactly one running primary, or a refusal).
  - 'The target: the one asked for, else the streaming standby with the least replay lag, a synchronous one first.
    Refused: a target that is the primary, not a PostgreSQL node, not streaming, or further behind than the limit.'
  - Transactions older than the limit are returned in C(old_transactions); the playbook waits for them before it
    pauses, or refuses.
options:
  _input:
    description:
      - One entry per PostgreSQL node, inventory name to the registered result of the switchover's read
        (C(postgresql_query) returning C(in_recovery), C(replication) rows with C(application_name), C(state),
        C(sync_state), C(lag_bytes), and C(old_transactions)); a failed or missing one is a node that did not answer.
    type: dict
    required: true
  target:
    description: Inventory name of the wanted new primary; empty picks one.
    type: str
    required: true
  slots:
    description: Inventory name to the name the node streams under (its replication slot, C(application_name)).
    type: dict
    required: true
  initial_primary:
    description: The postgres_primary group's host (only used on a fresh cluster, which cannot be switched over).
    type: str
    required: true
  max_lag_bytes:
    description: A target further behind than this is refused.
    type: int
    required: true
author: dbstack.ha contributors
"""

EXAMPLES = r"""
- name: Plan the switchover
  ansible.builtin.set_fact:
    plan: "{{ reads | dbstack.ha.pg_switchover_plan('', slots, 'pg1', 10485760) }}"
"""

RETURN = r"""
_value:
  description:
    - C(primary), C(target), C(followers) (the other nodes, old primary included, that must follow the target),
      C(lag_bytes) of the target, C(candidates) (streaming standbys with their lag and sync state),
      C(old_transactions) (on the primary), C(problems) (empty when the switchover may go ahead).
  type: dict
"""

from ansible_collections.dbstack.ha.plugins.filter.pg_topology import pg_current_primary


def _row(answer):
    if not isinstance(answer, dict) or answer.get("failed") or answer.get("unreachable") or answer.get("skipped"):
        return None
    rows = answer.get("query_result") or []
    return rows[0] if rows and isinstance(rows[0], dict) else None


def pg_switchover_plan(reads, target, slots, initial_primary, max_lag_bytes):
    reads = reads or {}
    rows = dict((host, _row(answer)) for host, answer in reads.items())
    states = dict((host, (row.get("in_recovery") if row and isinstance(row.get("in_recovery"), bool) else "unknown"))
                  for host, row in rows.items())
    current = pg_current_primary(states, initial_primary)
    plan = dict(primary="", target="", followers=[], lag_bytes=None, candidates=[], old_transactions=[], problems=[])
    if current["reason"] != "running":
        plan["problems"].append(current["problem"] or "no running primary (%s)" % current["reason"])
        return plan
    primary = plan["primary"] = current["primary"]
    unknown = sorted(h for h, s in states.items() if s == "unknown")
    if unknown:
        plan["problems"].append(
            "%s did not answer: a switchover needs every PostgreSQL node. A former primary left stopped by an "
            "interrupted switchover rejoins with `playbooks/site.yml -e postgres_ha_rejoin=true`; start a stopped "
            "standby; a lost primary is a failover, not a switchover" % ", ".join(unknown))
    primary_row = rows[primary]
    plan["old_transactions"] = list(primary_row.get("old_transactions") or [])
    senders = dict((r.get("application_name"), r) for r in primary_row.get("replication") or [])
    for host in sorted(rows):
        if host == primary or states[host] is not True:
            continue
        sender = senders.get(slots.get(host, host))
        if sender and sender.get("state") == "streaming":
            plan["candidates"].append(dict(host=host, lag_bytes=int(sender.get("lag_bytes") or 0),
                                           sync_state=sender.get("sync_state") or "async"))
    sync_rank = {"sync": 0, "quorum": 1, "potential": 2}
    plan["candidates"].sort(key=lambda c: (sync_rank.get(c["sync_state"], 3), c["lag_bytes"], c["host"]))
    streaming = dict((c["host"], c) for c in plan["candidates"])

    if target:
        if target not in rows:
            plan["problems"].append("dbstack_switchover_target=%s is not a PostgreSQL node (they are: %s)" % (
                target, ", ".join(sorted(rows))))
            return plan
        if target == primary:
            plan["problems"].append("dbstack_switchover_target=%s is already the primary: nothing to switch" % target)
            return plan
        if target not in streaming:
            sender = senders.get(slots.get(target, target))
            plan["problems"].append("the target %s is not streaming from %s (%s): fix replication first" % (
                target, primary, "walsender state %s" % sender.get("state") if sender else "no walsender for it"))
            return plan
        chosen = streaming[target]
    elif plan["candidates"]:
        chosen = plan["candidates"][0]
    else:
        plan["problems"].append("no standby streams from %s: there is nothing to switch over to" % primary)
        return plan
    plan["target"] = chosen["host"]
    plan["lag_bytes"] = chosen["lag_bytes"]
    plan["followers"] = sorted(h for h in rows if h != chosen["host"])
    if chosen["lag_bytes"] > int(max_lag_bytes):
        plan["problems"].append("the target %s is %.1f MiB behind %s (limit %.1f MiB): wait for it to catch up" % (
            chosen["host"], chosen["lag_bytes"] / 1048576.0, primary, int(max_lag_bytes) / 1048576.0))
    return plan


class FilterModule(object):
    def filters(self):
        return {"pg_switchover_plan": pg_switchover_plan}
