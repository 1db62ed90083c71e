# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: pg_failover_plan
short_description: Decide an unplanned failover - whether the primary is really gone, whom to promote, whom to fence
version_added: 0.2.0
description:
  - The decision behind C(playbooks/failover.yml), taken before anything changes, from what every PostgreSQL and
    PgBouncer host saw of every PostgreSQL node (dbstack.ha.pg_node_probe run on each).
  - 'The old primaries: every PostgreSQL node that no host saw as a standby (dead, stopped, cut off, or still
    running as primary). A failover is refused while any of them is seen taking writes by a standby and by a
    PgBouncer host both - the primary is alive and serving, so a mistaken run never kills a healthy primary -
    unless O(force=true).'
  - 'The new primary: the one asked for, else the reachable standby with the highest timeline and received WAL
    position (the least data lost). Refused when there is none, or when the one asked for is behind another
    candidate (unless O(force=true)). The difference between candidates is returned.'
  - 'Fencing: old primaries whose host this controller reached are fenced on the host; the others only by
    repointing PgBouncer (and the user fence command, when set).'
options:
  _input:
    description:
      - Host name to the registered result of dbstack.ha.pg_node_probe on that host (its C(nodes)); a failed,
        skipped or unreachable result is a host the controller did not reach.
    type: dict
    required: true
  pg_hosts:
    description: The PostgreSQL nodes (inventory names).
    type: list
    elements: str
    required: true
  pgbouncer_hosts:
    description: The PgBouncer hosts.
    type: list
    elements: str
    required: true
  target:
    description: The standby to promote; empty picks the best.
    type: str
    default: ""
  force:
    description: Go ahead although an old primary is seen writable, or the target is behind another candidate.
    type: bool
    default: false
author: dbstack.ha contributors
"""

EXAMPLES = r"""
- name: Plan the failover
  ansible.builtin.set_fact:
    plan: >-
      {{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars, '__probe')))
         | dbstack.ha.pg_failover_plan(groups['postgres'], groups['pgbouncer'], '', false) }}
"""

RETURN = r"""
_value:
  description:
    - C(target) (the standby to promote), C(target_lsn), C(target_timeline), C(old_primaries), C(fence_on_host)
      (old primaries whose host answered), C(fence_first) (those whose PostgreSQL still answers there, fenced before
      the promotion), C(fence_later) (the rest of them, fenced after it), C(fence_unreached) (the others), C(followers) (the other standbys),
      C(ahead) (followers with WAL the target lacks; they need a rejoin, not a repoint), C(candidates)
      (host, lsn, timeline, behind_bytes), C(seen_writable) (old primary to the standbys and PgBouncer hosts
      that saw it take writes), C(unreached) (hosts the controller did not reach), C(problems) (empty when the
      failover may go ahead), C(warnings).
  type: dict
"""


def _lsn(text):
    if not text:
        return -1
    high, _sep, low = str(text).partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def _nodes(result):
    if not isinstance(result, dict) or result.get("failed") or result.get("unreachable") or result.get("skipped"):
        return None
    nodes = result.get("nodes")
    return nodes if isinstance(nodes, dict) else None


def pg_failover_plan(observations, pg_hosts, pgbouncer_hosts, target="", force=False):
    observations = observations or {}
    views = dict((host, _nodes(observations.get(host))) for host in list(pg_hosts) + list(pgbouncer_hosts))
    reached = sorted(h for h, v in views.items() if v is not None)
    plan = dict(target="", target_lsn="", target_timeline=None, old_primaries=[], fence_on_host=[],
                fence_first=[], fence_later=[], fence_unreached=[], followers=[], ahead=[], candidates=[], seen_writable={},
                unreached=sorted(h for h, v in views.items() if v is None), problems=[], warnings=[])

    def answers(node):
        """What the reached hosts saw of node, its own view first."""
        seen = []
        for observer in [node] + sorted(h for h in views if h != node):
            info = (views.get(observer) or {}).get(node)
            if isinstance(info, dict) and info.get("reachable"):
                seen.append((observer, info))
        return seen

    standbys = dict((n, answers(n)[0][1]) for n in pg_hosts if answers(n) and answers(n)[0][1].get("in_recovery"))
    old = [n for n in pg_hosts if n not in standbys]
    plan["old_primaries"] = old
    standby_observers = [n for n in standbys if views.get(n) is not None]
    pgbouncer_observers = [h for h in pgbouncer_hosts if views.get(h) is not None]
    for node in old:
        by_standby = sorted(o for o in standby_observers if ((views[o] or {}).get(node) or {}).get("writable"))
        by_pgbouncer = sorted(o for o in pgbouncer_observers if ((views[o] or {}).get(node) or {}).get("writable"))
        plan["seen_writable"][node] = dict(standbys=by_standby, pgbouncers=by_pgbouncer)
        if by_standby and by_pgbouncer:
            text = ("%s still takes writes as seen from %s (standby) and %s (PgBouncer): the primary is alive and "
                    "serving. For a planned change use playbooks/switchover.yml; if it must go anyway, "
                    "-e failover_force=true fences it and promotes a standby (writes it has not replicated are lost)"
                    % (node, ", ".join(by_standby), ", ".join(by_pgbouncer)))
            (plan["warnings"] if force else plan["problems"]).append(("failover_force=true overrides: " if force else "")
                                                                     + text)
    plan["fence_on_host"] = [n for n in old if views.get(n) is not None]
    # Fenced before the promotion: those whose PostgreSQL still answers on their own host (it may take writes);
    # one whose host answers but whose PostgreSQL does not is fenced after it, off the path to the first write.
    plan["fence_first"] = [n for n in plan["fence_on_host"] if ((views[n] or {}).get(n) or {}).get("reachable")]
    plan["fence_later"] = [n for n in plan["fence_on_host"] if n not in plan["fence_first"]]
    plan["fence_unreached"] = [n for n in old if views.get(n) is None]

    candidates = []
    for node, info in sorted(standbys.items()):
        if views.get(node) is None:
            plan["warnings"].append("%s is a standby but this controller cannot reach its host: it cannot be "
                                    "promoted or reconfigured in this run" % node)
            continue
        candidates.append(dict(host=node, lsn=info.get("lsn") or "", timeline=int(info.get("timeline") or 0)))
    candidates.sort(key=lambda c: (-c["timeline"], -_lsn(c["lsn"]), c["host"]))
    if candidates:
        best = candidates[0]
        for cand in candidates:
            cand["behind_bytes"] = (max(0, _lsn(best["lsn"]) - _lsn(cand["lsn"]))
                                    if cand["timeline"] == best["timeline"] else None)
    plan["candidates"] = candidates
    if not candidates:
        running = sorted(n for n in old if any(info.get("writable") for _o, info in answers(n)))
        plan["problems"].append("no reachable standby to promote (standbys seen: %s; hosts not reached: %s)%s" % (
            ", ".join(sorted(standbys)) or "none", ", ".join(plan["unreached"]) or "none",
            "; %s already runs as a writable primary - if PgBouncer does not point to it yet, playbooks/site.yml "
            "repoints it to the current primary" % ", ".join(running) if running else ""))
        return plan
    by_host = dict((c["host"], c) for c in candidates)
    if target:
        if target not in pg_hosts:
            plan["problems"].append("failover_target=%s is not a PostgreSQL node (they are: %s)" % (
                target, ", ".join(pg_hosts)))
            return plan
        if target not in by_host:
            plan["problems"].append("failover_target=%s is not a reachable standby (candidates: %s)" % (
                target, ", ".join(sorted(by_host))))
            return plan
        chosen = by_host[target]
        if chosen is not candidates[0] and (chosen["timeline"] < candidates[0]["timeline"]
                                            or _lsn(chosen["lsn"]) < _lsn(candidates[0]["lsn"])):
            text = ("failover_target=%s (timeline %s, %s) is behind %s (timeline %s, %s)%s: promoting it loses what "
                    "only %s has" % (target, chosen["timeline"], chosen["lsn"], candidates[0]["host"],
                                     candidates[0]["timeline"], candidates[0]["lsn"],
                                     " by %d bytes" % chosen["behind_bytes"] if chosen["behind_bytes"] else "",
                                     candidates[0]["host"]))
            if force:
                plan["warnings"].append("failover_force=true overrides: " + text)
            else:
                plan["problems"].append(text + "; leave failover_target empty, or set failover_force=true")
    else:
        chosen = candidates[0]
    plan.update(target=chosen["host"], target_lsn=chosen["lsn"], target_timeline=chosen["timeline"])
    plan["followers"] = [c["host"] for c in candidates if c["host"] != chosen["host"]]
    plan["ahead"] = [c["host"] for c in candidates if c["host"] != chosen["host"]
                     and (c["timeline"] > chosen["timeline"]
                          or (c["timeline"] == chosen["timeline"] and _lsn(c["lsn"]) > _lsn(chosen["lsn"])))]
    return plan


class FilterModule(object):
    def filters(self):
        return {"pg_failover_plan": pg_failover_plan}
