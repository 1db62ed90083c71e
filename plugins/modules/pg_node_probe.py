# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_node_probe
short_description: Ask every PostgreSQL node, in parallel and from this host, what it is
version_added: 0.2.0
description:
  - Connects to each node of O(nodes) over TCP at the same time, each bounded by O(connect_timeout), and reads whether
    it answers, whether it is in recovery, whether it takes writes, its timeline and its WAL positions, and what it
    streams from.
  - This is what a failover decides on (C(playbooks/failover.yml), dbstack.ha.pg_failover_plan). Run on every
    standby and every PgBouncer host, it tells a primary that is really gone from one that only this controller
    cannot reach.
  - Read-only. A node that does not answer is reported with C(reachable=false) and the cause; the module itself only
    fails on bad input. Whatever happens on the network, it returns within 2 x O(connect_timeout) + 3 seconds.
  - A node's host name is looked up by the module, bounded by O(connect_timeout) and asked again every second while
    the resolver does not answer (libpq's own timeout does not cover the lookup, and a resolver that stalls - a DNS
    server lost with the failed site - would hold it for its own 5 s timeout, twice); libpq then connects to the
    address and still checks the certificate against the name.
author: dbstack.ha contributors (@dbstack)
extends_documentation_fragment:
  - dbstack.ha.postgres
options:
  nodes:
    description: The nodes to ask.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The node's name in the result (its inventory name).
        type: str
        required: true
      host:
        description: Address to connect to.
        type: str
        required: true
      port:
        description: Port.
        type: int
        default: 5432
  connect_timeout:
    description: Seconds to wait for each node (libpq's minimum is 2).
    type: int
    default: 2
attributes:
  check_mode:
    support: full
    description: Reads only; the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed.
  idempotent:
    support: full
    description: Reads only.
notes:
  - O(login_host), O(login_unix_socket) and O(login_port) are ignored; each node's own C(host) and C(port) are used.
"""

EXAMPLES = r"""
- name: What does this host see of every PostgreSQL node
  dbstack.ha.pg_node_probe:
    nodes:
      - {name: pg1, host: 10.0.0.11}
      - {name: pg2, host: 10.0.0.12}
    login_user: postgres
    login_password: "{{ postgres_ha_superuser_password }}"
  register: seen
"""

RETURN = r"""
nodes:
  description:
    - Node name to what this host saw. C(reachable), C(in_recovery), C(writable) (not in recovery and not
      read-only by default), C(timeline), C(lsn) (a primary's current WAL position; a standby's furthest received
      or replayed position), C(receive_lsn), C(replay_lsn), C(upstream) (C(host), C(port), C(status) of its WAL
      receiver), C(synchronous_standby_names), C(replicas) (a primary's streaming standbys, with C(sync_state)),
      C(ms) (time taken) and C(error) when it did not answer.
  returned: always
  type: dict
  sample:
    pg1: {reachable: false, error: "connection timeout expired", ms: 2003.1}
    pg2: {reachable: true, in_recovery: true, writable: false, timeline: 1, lsn: 0/3000148,
          receive_lsn: 0/3000148, replay_lsn: 0/3000148, ms: 6.2,
          upstream: {host: pg1, port: 5432, status: waiting}}
"""

import threading
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    ConnectionParamsError,
    ResolveError,
    build_conninfo,
    ensure_psycopg,
    psycopg,
    postgres_common_argument_spec,
    redact,
    resolve_host,
    secrets_of,
)

QUERY = """
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('default_transaction_read_only') = 'on' AS read_only,
       CASE WHEN pg_is_in_recovery()
            THEN greatest((SELECT received_tli FROM pg_stat_wal_receiver),
                          (SELECT min_recovery_end_timeline FROM pg_control_recovery()),
                          (SELECT timeline_id FROM pg_control_checkpoint()))
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline,
       CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END AS current_lsn,
       pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       (SELECT json_build_object('host', sender_host, 'port', sender_port, 'status', status)
          FROM pg_stat_wal_receiver) AS upstream,
       current_setting('synchronous_standby_names') AS synchronous_standby_names,
       (SELECT coalesce(json_agg(json_build_object('application_name', application_name, 'state', state,
                                                   'sync_state', sync_state)), '[]'::json)
          FROM pg_stat_replication) AS replicas
"""


def lsn_number(lsn):
    if not lsn:
        return -1
    high, _sep, low = str(lsn).partition("/")
    return (int(high, 16) << 32) + int(low, 16)


class Probe(object):
    def __init__(self, module):
        self.module = module
        self.secrets = secrets_of(module.params)

    def conninfo(self, node):
        params = dict(self.module.params, login_host=node["host"], login_port=node["port"], login_unix_socket=None)
        info = build_conninfo(params)
        info["options"] = "-c statement_timeout=%d" % (1000 * max(2, self.module.params["connect_timeout"]))
        return info

    def ask(self, node, info, out):
        started = time.monotonic()
        try:
            # The name is looked up here, bounded (libpq's connect_timeout does not cover the lookup), and libpq
            # connects to the address (hostaddr) while it still checks the certificate against the name.
            # Each address is tried in turn, as libpq would (the name repeated, one hostaddr each).
            addresses = resolve_host(info.get("host"), info["port"], max(2, self.module.params["connect_timeout"]))
            if addresses:
                info = dict(info, host=",".join([info["host"]] * len(addresses)), hostaddr=",".join(addresses))
            with psycopg.connect(autocommit=True, **info) as conn:
                row = conn.execute(QUERY).fetchone()
            (in_recovery, read_only, timeline, current, receive, replay, upstream, sync_names, replicas) = row
            furthest = current if not in_recovery else max([receive, replay], key=lsn_number)
            out[node["name"]] = dict(
                reachable=True, in_recovery=in_recovery, writable=not in_recovery and not read_only,
                timeline=timeline, lsn=furthest, receive_lsn=receive, replay_lsn=replay, upstream=upstream,
                synchronous_standby_names=sync_names, replicas=replicas or [],
                ms=round((time.monotonic() - started) * 1000.0, 1))
        except ResolveError as exc:
            out[node["name"]] = dict(reachable=False, error=str(exc), ms=round((time.monotonic() - started) * 1000.0, 1))
        except Exception as exc:  # pylint: disable=broad-except
            text = redact(str(exc).strip(), self.secrets) or exc.__class__.__name__
            out[node["name"]] = dict(reachable=False, error=text.splitlines()[0],
                                     ms=round((time.monotonic() - started) * 1000.0, 1))

    def run(self):
        infos = []
        for node in self.module.params["nodes"]:
            try:
                infos.append((node, self.conninfo(node)))
            except ConnectionParamsError as exc:
                self.module.fail_json(msg="nodes[%s]: %s" % (node["name"], redact(str(exc), self.secrets)))
        out = {}
        threads = [threading.Thread(target=self.ask, args=(node, info, out), daemon=True) for node, info in infos]
        # A hard deadline on top of libpq's connect_timeout and the statement_timeout: a connection attempt that
        # hangs anyway (a host that vanished mid-handshake) must not hold the failover up.
        limit = 2 * max(2, self.module.params["connect_timeout"]) + 3
        deadline = time.monotonic() + limit
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for node, _info in infos:
            out.setdefault(node["name"], dict(reachable=False, error="no answer within %d s" % limit,
                                              ms=round(limit * 1000.0, 1)))
        return dict(changed=False, nodes=dict(out))


def main():
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(
        nodes=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str", required=True),
            host=dict(type="str", required=True),
            port=dict(type="int", default=5432),
        )),
        connect_timeout=dict(type="int", default=2),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_psycopg(module)
    names = [n["name"] for n in module.params["nodes"]]
    if len(set(names)) != len(names):
        module.fail_json(msg="option nodes names a node twice (%s): give each node once" % ", ".join(sorted(names)))
    module.exit_json(**Probe(module).run())


if __name__ == "__main__":
    main()
