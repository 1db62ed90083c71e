# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: redis_current_master
short_description: Decide which Redis node is the master now, from what the nodes and the Sentinels report
version_added: 0.1.0
description:
  - Used by the sentinel role before it changes anything. In order of precedence
  - The master a quorum of Sentinels agree on, when that node is running as a master.
  - On a fresh stack (no node bootstrapped yet) the initial master.
  - Otherwise the only running node that reports itself master.
  - Anything else (the Sentinels' master is down or not a master yet, two running masters, no running master) is
    returned as a problem, and the role stops before changing anything.
options:
  _input:
    description:
      - One entry per Redis node, a dict with C(host), C(address), C(port), C(bootstrapped), C(running), C(role)
        (C(master)/C(slave)/C(replica)).
    type: list
    elements: dict
    required: true
  sentinels:
    description:
      - One entry per Sentinel, a dict with C(host) and C(info), the Sentinel's C(INFO) (empty when it did not answer).
    type: list
    elements: dict
    required: true
  initial_master:
    description: Inventory name of the master of a fresh stack.
    type: str
    required: true
  quorum:
    description: Sentinels that must agree.
    type: int
    required: true
  master_name:
    description: Name the Sentinels monitor the master under.
    type: str
    required: true
author: dbstack.ha contributors
"""

EXAMPLES = r"""
- name: Decide the current master
  ansible.builtin.set_fact:
    topology: "{{ nodes | dbstack.ha.redis_current_master(sentinels, 'redis1', 2, 'dbstack') }}"
"""

RETURN = r"""
_value:
  description:
    - C(master) (inventory name or empty), C(address), C(port), C(source) (C(sentinels), C(initial), C(nodes)),
      C(votes) (address to number of Sentinels), C(problems) (list of messages; empty when the master is clear).
  type: dict
"""

from collections import Counter


def sentinel_master_address(info, master_name):
    """The 'address' of master NAME in a Sentinel's INFO (master0:name=...,address=ip:port,...)."""
    for key, value in sorted((info or {}).items()):
        if not str(key).startswith("master") or not isinstance(value, dict):
            continue
        if value.get("name") == master_name and value.get("address"):
            return str(value["address"])
    return ""


def redis_current_master(nodes, sentinels, initial_master, quorum, master_name):
    nodes = list(nodes or [])
    by_address = dict(("%s:%s" % (n["address"], n["port"]), n) for n in nodes)
    result = dict(master="", address="", port=0, source="", votes={}, problems=[])

    votes = Counter()
    for sentinel in sentinels or []:
        address = sentinel_master_address(sentinel.get("info"), master_name)
        if address:
            votes[address] += 1
    result["votes"] = dict(votes)

    def found(node, source):
        result.update(master=node["host"], address=node["address"], port=int(node["port"]), source=source)
        return result

    running_masters = [n for n in nodes if n.get("running") and n.get("role") == "master"]
    if votes:
        address, count = votes.most_common(1)[0]
        if count >= int(quorum) and list(votes.values()).count(count) == 1:
            node = by_address.get(address)
            if node is None:
                result["problems"].append(
                    "%d Sentinels follow master %s, which is no node of the redis group: add it to the inventory "
                    "or SENTINEL RESET the Sentinels" % (count, address))
                return result
            if node.get("running") and node.get("role") == "master":
                return found(node, "sentinels")
            result["problems"].append(
                "the Sentinels' master %s (%s) is %s: a failover is probably under way; wait until the Sentinels "
                "promote a replica (SENTINEL MASTER %s) and run again" % (
                    node["host"], address, "down" if not node.get("running") else "a replica", master_name))
            return result
        if len(votes) > 1:
            result["problems"].append(
                "the Sentinels disagree on the master (%s) and none has a quorum of %s: check their connectivity"
                % (", ".join("%s by %d" % item for item in sorted(votes.items())), quorum))
            return result

    if not any(n.get("bootstrapped") for n in nodes):
        node = [n for n in nodes if n["host"] == initial_master]
        if not node:
            result["problems"].append("the initial master %s is not in the redis group" % initial_master)
            return result
        return found(node[0], "initial")
    if len(running_masters) == 1:
        return found(running_masters[0], "nodes")
    if len(running_masters) > 1:
        result["problems"].append(
            "%s all run as masters and the Sentinels do not settle which is right: make the stale ones replicas "
            "(REPLICAOF) by hand, then run again" % ", ".join(n["host"] for n in running_masters))
    else:
        result["problems"].append(
            "no Redis node runs as master (bootstrapped: %s; running: %s) and the Sentinels name none: start the "
            "last master, or promote a replica (REPLICAOF NO ONE), then run again" % (
                ", ".join(n["host"] for n in nodes if n.get("bootstrapped")) or "none",
                ", ".join(n["host"] for n in nodes if n.get("running")) or "none"))
    return result


class FilterModule(object):
    def filters(self):
        return {"redis_current_master": redis_current_master}
