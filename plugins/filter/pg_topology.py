# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: pg_current_primary
short_description: Decide which PostgreSQL node is the primary now, from what each node reports
version_added: 0.1.0
description:
  - The one decision behind every "where is the primary" in the collection (the postgres_ha role, pgbouncer run
    without it, monitoring, the backup role). In order of precedence
  - The only node running as primary (not in recovery), wherever a failover left it.
  - With no node running as primary, the only node that holds a stopped cluster which is not a standby (the
    primary stopped; postgres_ha starts it again).
  - On a fresh cluster (every node C(absent)) the designated initial primary.
  - Anything else is no primary, with the reason - C(split_brain) (two or more running primaries, listed in
    C(running_primaries)) or C(no_candidate) - and a message that says what to do.
options:
  _input:
    description:
      - One entry per node, inventory name to its state. A state is one of C(absent) (no cluster),
        C(primary), C(standby), C(stopped_standby), C(stopped_primary), C(unknown) (did not answer); or the
        answer to C(SELECT pg_is_in_recovery() AS in_recovery) - a boolean, or the registered result of
        C(community.postgresql.postgresql_query) (a failed, skipped or unreachable one is C(unknown)).
    type: dict
    required: true
  initial_primary:
    description: Inventory name of the primary of a fresh cluster (the postgres_primary group's host).
    type: str
    required: true
author: dbstack.ha contributors
"""

EXAMPLES = r"""
- name: Decide the current primary
  ansible.builtin.set_fact:
    current: "{{ {'pg1': 'primary', 'pg2': 'standby'} | dbstack.ha.pg_current_primary('pg1') }}"

- name: From in-recovery answers registered in a loop over the hosts
  ansible.builtin.set_fact:
    current: >-
      {{ dict(answers.results | map(attribute='item') | zip(answers.results))
         | dbstack.ha.pg_current_primary(groups['postgres_primary'][0]) }}
"""

RETURN = r"""
_value:
  description:
    - C(primary) (inventory name, empty when there is none), C(running) (whether it runs now),
      C(reason) (C(running), C(stopped_primary), C(fresh), C(split_brain), C(no_candidate)),
      C(running_primaries) (sorted list), C(states) (node to normalised state), C(unknown) (nodes that did not
      answer), C(problem) (empty when a primary was found, else what is wrong and what to do).
  type: dict
"""

STATES = ("absent", "primary", "standby", "stopped_standby", "stopped_primary", "unknown")


def pg_node_state(answer):
    """Normalise one node's state: a state name, an in-recovery boolean, or a registered postgresql_query result."""
    if answer is None:
        return "unknown"
    if isinstance(answer, bool):
        return "standby" if answer else "primary"
    if isinstance(answer, dict):
        rows = answer.get("query_result")
        if answer.get("failed") or answer.get("unreachable") or answer.get("skipped") or not rows:
            return "unknown"
        in_recovery = rows[0].get("in_recovery") if isinstance(rows[0], dict) else None
        if not isinstance(in_recovery, bool):
            return "unknown"
        return "standby" if in_recovery else "primary"
    state = str(answer)
    if state not in STATES:
        raise ValueError("unknown PostgreSQL node state %r (expected one of %s)" % (state, ", ".join(STATES)))
    return state


def pg_current_primary(nodes, initial_primary):
    states = dict((str(host), pg_node_state(answer)) for host, answer in (nodes or {}).items())

    def having(state):
        return sorted(host for host, value in states.items() if value == state)

    running, stopped, unknown = having("primary"), having("stopped_primary"), having("unknown")
    result = dict(primary="", running=False, reason="", running_primaries=running, states=states,
                  unknown=unknown, problem="")

    def found(host, reason):
        result.update(primary=host, running=reason == "running", reason=reason)
        return result

    def refuse(reason, problem):
        result.update(reason=reason, problem=problem)
        return result

    if len(running) == 1:
        return found(running[0], "running")
    if len(running) > 1:
        return refuse("split_brain", (
            "%s are all running as primary (split brain): fence all but the right one (stop PostgreSQL on the "
            "others, and keep them stopped) before running again" % ", ".join(running)))
    if len(stopped) == 1:
        return found(stopped[0], "stopped_primary")
    if states and all(value == "absent" for value in states.values()):
        if initial_primary not in states:
            return refuse("no_candidate", "fresh cluster, but the initial primary %s is not one of the PostgreSQL "
                                          "nodes (%s): fix the postgres_primary group" % (
                                              initial_primary, ", ".join(sorted(states))))
        return found(initial_primary, "fresh")

    states_text = ", ".join("%s: %s" % item for item in sorted(states.items())) or "no PostgreSQL nodes"
    if len(stopped) > 1:
        hint = ("%s hold stopped clusters that are not standbys, and none runs: start the right one (its data is "
                "the newest), fence the others, then run again" % ", ".join(stopped))
    elif unknown and len(unknown) == len(states):
        hint = "no node answered (is PostgreSQL up, and reachable on its local socket?)"
    elif unknown:
        hint = ("no node that answered is a primary and %s did not answer: start PostgreSQL there if it is the "
                "primary, or promote a standby with dbstack.ha.pg_promote, then run again" % ", ".join(unknown))
    else:
        hint = ("some nodes hold cluster data but none is, or was, a primary: promote a standby with "
                "dbstack.ha.pg_promote, or start the former primary, then run again")
    return refuse("no_candidate", "no node can be taken as the primary (%s): %s" % (states_text, hint))


class FilterModule(object):
    def filters(self):
        return {"pg_current_primary": pg_current_primary}
