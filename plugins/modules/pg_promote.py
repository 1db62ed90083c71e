# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_promote
short_description: Promote a PostgreSQL standby to primary, and prove it
version_added: 0.1.0
description:
  - Promotes a streaming standby, then checks that C(pg_is_in_recovery()) is false before it reports success.
  - On a server that is already a primary it changes nothing.
  - 'Before promoting it guards against split brain: it finds the primary the standby streams from
    (C(pg_stat_wal_receiver), else C(primary_conninfo)), connects to it with the same credentials, and refuses while that
    server answers, is not in recovery and does not default to read-only transactions - that is, while it still accepts
    writes. An upstream that answers but cannot be checked (wrong credentials for example) is treated as writable.
    An unreachable upstream is treated as down, with a warning: fence it so clients cannot reach it either.'
  - With O(max_lag_bytes) it also refuses while the standby's replay is further behind than that.
  - O(force=true) overrides both guards. Promotion itself cannot be undone; check mode reports what would happen.
  - Promotion uses C(pg_promote(wait => false)) and then polls C(pg_is_in_recovery()) every few milliseconds, which
    notices the end of recovery sooner than the 100 ms polling tick of C(pg_promote(wait => true)).
    With O(method=pg_ctl) it runs C(pg_ctl promote) on the host instead (the module must then run as the cluster owner).
author: dbstack.ha contributors (@dbstack)
extends_documentation_fragment:
  - dbstack.ha.postgres
options:
  wait:
    description:
      - Wait until the server has left recovery (up to O(wait_seconds)) and fail if it has not.
      - With V(false) the promotion is requested and the module returns at once; C(promoted) is then only
        reported true if recovery had already ended.
    type: bool
    default: true
  wait_seconds:
    description:
      - How long to wait for the end of recovery. Also bounds C(pg_ctl promote -t).
    type: int
    default: 60
  method:
    description:
      - V(sql) calls C(pg_promote()) over the connection (superuser, or EXECUTE on C(pg_promote) granted).
      - V(pg_ctl) runs C(pg_ctl promote -D DATA_DIRECTORY) on the host; the data directory is read from the server.
    type: str
    choices: [sql, pg_ctl]
    default: sql
  pg_ctl_path:
    description:
      - Path of C(pg_ctl) for O(method=pg_ctl). Defaults to C(/usr/lib/postgresql/MAJOR/bin/pg_ctl) (Debian), then C(pg_ctl) on PATH.
    type: path
  max_lag_bytes:
    description:
      - Refuse (unless O(force=true)) when the standby's replay is more than this many bytes behind the upstream's
        current WAL position, or behind what the standby received when the upstream is unreachable.
    type: int
  check_upstream:
    description:
      - Look for a writable upstream primary before promoting (the split-brain guard).
    type: bool
    default: true
  upstream_connect_timeout:
    description:
      - Seconds to wait for the upstream primary when checking it.
    type: int
    default: 3
  force:
    description:
      - Promote even when the upstream still accepts writes or the lag is above O(max_lag_bytes).
    type: bool
    default: false
  wait_for_lsn:
    description:
      - Before anything else, wait until the standby has replayed past this LSN - in a switchover the stopped old
        primary's last checkpoint location (C(pg_controldata)), which proves nothing it wrote is lost (RPO 0). When it
        is not reached within O(wait_for_lsn_timeout) seconds the task fails and nothing is promoted.
    type: str
  wait_for_lsn_timeout:
    description: Seconds to wait for O(wait_for_lsn).
    type: int
    default: 30
  slots:
    description:
      - Physical replication slots to create on the standby, when missing, just before it is promoted - one per node
        that will follow it - so that no WAL they need is recycled before they connect.
    type: list
    elements: str
  relax_sync:
    description:
      - Right after the promotion, empty C(synchronous_standby_names) on the new primary with C(ALTER SYSTEM) when it
        is set, so that commits do not hang until its standbys have reconnected (with FIRST or ANY N, every commit
        waits for a standby that is not there yet). Done after the promotion, since a configuration reload just
        before it delays the end of recovery by C(wal_retrieve_retry_interval).
      - The override stays until the C(sync) entry point of the C(dbstack.ha.postgres_ha) role resets it, once
        enough standbys stream (the failover playbook runs it). Until then commits are asynchronous, as with
        Patroni's non-strict synchronous mode.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports whether it would promote and what the guards found; nothing is changed.
  diff_mode:
    support: none
    description: Promotion has no file or object state to show as a diff.
  idempotent:
    support: full
    description: On a primary it reports C(changed=false) and does nothing.
notes:
  - Run it against the standby you want to promote, for example with O(login_unix_socket) on that host and
    C(become_user=postgres), or over TCP from the controller.
seealso:
  - name: pg_promote()
    description: PostgreSQL's recovery control functions.
    link: https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-RECOVERY-CONTROL
"""

EXAMPLES = r"""
- name: Promote the standby on this host (planned switchover, the old primary is already stopped)
  dbstack.ha.pg_promote:
    login_unix_socket: /var/run/postgresql
  become: true
  become_user: postgres

- name: Promote only if no more than 16 MiB behind
  dbstack.ha.pg_promote:
    login_host: pg2.example.internal
    login_user: postgres
    login_password: "{{ vault_postgres_password }}"
    ssl_mode: verify-full
    ca_cert: /etc/dbstack/ca.crt
    max_lag_bytes: 16777216

- name: Unplanned failover, old primary fenced by other means
  dbstack.ha.pg_promote:
    dsn: "postgresql://postgres@pg2:5432/postgres?sslmode=require"
    login_password: "{{ vault_postgres_password }}"
    force: true
  register: promotion

- name: Failover with synchronous replication - commits do not wait for standbys that are still reconnecting
  dbstack.ha.pg_promote:
    login_unix_socket: /var/run/postgresql
    check_upstream: false
    relax_sync: true
  become: true
  become_user: postgres

- name: Show the new timeline
  ansible.builtin.debug:
    msg: "promoted in {{ promotion.elapsed_ms }} ms, timeline {{ promotion.timeline_before }} -> {{ promotion.timeline_after }}"
"""

RETURN = r"""
replayed_lsn:
  description: With O(wait_for_lsn), the standby's replay position once it was past it.
  returned: when wait_for_lsn is set and the server was in recovery
  type: str
  sample: 0/3000200
sync_relaxed:
  description:
    - The C(synchronous_standby_names) that O(relax_sync) emptied (in check mode would empty), or null when it was
      empty already or O(relax_sync=false).
  returned: when the server is promoted
  type: str
  sample: FIRST 1 ("pg1", "pg2", "pg3")
slots_created:
  description: The slots of O(slots) that were (in check mode would be) created before the promotion.
  returned: when the server is promoted
  type: list
  elements: str
promoted:
  description: Whether this run promoted the server (true in check mode when it would).
  returned: always
  type: bool
  sample: true
was_in_recovery:
  description: Whether the server was a standby when the module started.
  returned: always
  type: bool
  sample: true
timeline_before:
  description: Timeline of the server before promotion.
  returned: always
  type: int
  sample: 1
timeline_after:
  description: Timeline after promotion (a new one when it promoted), or the current one.
  returned: when the server is a primary at the end
  type: int
  sample: 2
lsn:
  description: Current WAL position after the run (C(pg_current_wal_lsn()) on a primary, last replayed on a standby).
  returned: always
  type: str
  sample: 0/3000148
elapsed_ms:
  description: Milliseconds from the promotion request to C(pg_is_in_recovery()) being false. 0 when nothing was done.
  returned: always
  type: float
  sample: 27.4
lag_bytes:
  description: Replay lag measured before promoting (see O(max_lag_bytes)), or null when it was not measured.
  returned: always
  type: int
  sample: 0
upstream:
  description: What the split-brain guard found about the primary the standby streamed from.
  returned: when the server was a standby and O(check_upstream=true)
  type: dict
  sample: {"host": "pg1", "port": 5432, "reachable": false, "writable": null, "error": "connection refused"}
method:
  description: How it promoted (V(sql) or V(pg_ctl)).
  returned: always
  type: str
  sample: sql
warnings:
  description: Guard findings that did not stop the promotion.
  returned: when there are any
  type: list
  elements: str
"""

import os
import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils.pg_standby import create_missing_slots, relax_sync, wait_replayed_past
from ansible_collections.dbstack.ha.plugins.module_utils.pg_tools import ToolError, find_pg_tool
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    build_conninfo,
    connect,
    ensure_psycopg,
    postgres_common_argument_spec,
    postgres_mutually_exclusive,
    psycopg,
    redact,
    secrets_of,
)
from ansible_collections.dbstack.ha.plugins.module_utils.promote import Decision, decide, timeline_from_walfile

POLL_SECONDS = 0.005


class Promoter(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.conn, self.target = connect(module)

    def scalar(self, sql, *args):
        row = self.conn.execute(sql, args or None).fetchone()
        return row[0] if row else None

    def in_recovery(self):
        return bool(self.scalar("SELECT pg_is_in_recovery()"))

    def state(self):
        """Timeline and LSN as the server sees them now."""
        if self.in_recovery():
            timeline = self.scalar("SELECT timeline_id FROM pg_control_checkpoint()")
            received = self.scalar("SELECT received_tli FROM pg_stat_wal_receiver")
            lsn = self.scalar("SELECT pg_last_wal_replay_lsn()::text")
            return dict(recovery=True, timeline=max(t for t in (timeline, received, 0) if t is not None), lsn=lsn)
        walfile = self.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
        return dict(recovery=False, timeline=timeline_from_walfile(walfile),
                    lsn=self.scalar("SELECT pg_current_wal_lsn()::text"))

    def upstream_address(self):
        row = self.conn.execute("SELECT sender_host, sender_port FROM pg_stat_wal_receiver").fetchone()
        if row and row[0]:
            return row[0], int(row[1] or 5432)
        conninfo = self.scalar("SELECT current_setting('primary_conninfo', true)")
        if not conninfo:
            return None
        try:
            parsed = psycopg.conninfo.conninfo_to_dict(conninfo)
        except psycopg.Error:
            return None
        host = parsed.get("host") or parsed.get("hostaddr")
        if not host:
            return None
        return host.split(",", 1)[0], int(str(parsed.get("port") or 5432).split(",", 1)[0])

    def check_upstream(self):
        address = self.upstream_address()
        if address is None:
            return None
        host, port = address
        result = dict(host=host, port=port, reachable=None, writable=None, error=None, lsn=None)
        # The same credentials and TLS settings, aimed at the upstream.
        info = build_conninfo(self.params)
        info.update(host=host, port=port, connect_timeout=self.params["upstream_connect_timeout"])
        info.pop("hostaddr", None)
        try:
            upstream = psycopg.connect(autocommit=True, **info)
        except psycopg.OperationalError as exc:
            # A server that answered with an error (e.g. bad password) is up.
            result["reachable"] = exc.sqlstate is not None
            result["error"] = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc),
                                     secrets_of(self.params))
            return result
        try:
            row = upstream.execute("SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'), "
                                   "CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END"
                                   ).fetchone()
            result["reachable"] = True
            result["writable"] = (not row[0]) and row[1] == "off"
            result["lsn"] = row[2]
        except psycopg.Error as exc:
            result["reachable"] = True
            result["error"] = str(exc).strip()
        finally:
            upstream.close()
        return result

    def lag_bytes(self, upstream):
        if upstream and upstream.get("lsn"):
            return int(self.scalar("SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())", upstream["lsn"]))
        value = self.scalar("SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())")
        return None if value is None else max(0, int(value))

    def request_sql(self):
        ok = self.scalar("SELECT pg_promote(false)")
        if not ok:
            self.module.fail_json(msg="pg_promote() refused to promote %s (is promotion already under way?)"
                                      % self.describe())

    def request_pg_ctl(self):
        data_dir = self.scalar("SELECT current_setting('data_directory')")
        try:
            # pg_ctl must match the server's major version: no newer folder is taken.
            pg_ctl = find_pg_tool("pg_ctl", self.conn.info.server_version // 10000, path=self.params.get("pg_ctl_path"),
                                  newer_ok=False, which=self.module.get_bin_path, option="pg_ctl_path")
        except ToolError as exc:
            self.module.fail_json(msg="method=pg_ctl: %s" % exc)
        owner = os.stat(data_dir).st_uid
        if os.geteuid() != owner:
            self.module.fail_json(msg="method=pg_ctl must run as the owner of %s (uid %d), e.g. with become_user: postgres"
                                      % (data_dir, owner))
        argv = [pg_ctl, "promote", "-D", data_dir, "-t", str(self.params["wait_seconds"])]
        argv.insert(2, "-w" if self.params["wait"] else "-W")
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            self.module.fail_json(msg="pg_ctl promote failed (rc=%d): %s" % (rc, (err or out).strip()), rc=rc)

    def wait_promoted(self, deadline):
        while True:
            if not self.in_recovery():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)

    def describe(self):
        return "%s:%s" % (self.target.get("host") or "local socket", self.target.get("port"))

    def wait_replayed(self, lsn, timeout):
        """Wait until replay is past LSN; fail (nothing promoted) when it is not within timeout."""
        replayed, reached = wait_replayed_past(self.conn, lsn, 0 if self.module.check_mode else timeout)
        if not reached:
            self.module.fail_json(
                msg="%s replayed WAL only up to %s, not past %s, within wait_for_lsn_timeout=%d s: not promoted "
                    "(it would lose what the old primary wrote after that)" % (self.describe(), replayed, lsn, timeout),
                replayed_lsn=replayed, changed=False, promoted=False)
        return replayed

    def run(self):
        params = self.params
        before = self.state()
        result = dict(changed=False, promoted=False, was_in_recovery=before["recovery"], method=params["method"],
                      timeline_before=before["timeline"], lsn=before["lsn"], elapsed_ms=0.0, lag_bytes=None)
        if not before["recovery"]:
            result["timeline_after"] = before["timeline"]
            return result

        if params["wait_for_lsn"]:
            result["replayed_lsn"] = self.wait_replayed(params["wait_for_lsn"], params["wait_for_lsn_timeout"])

        upstream = self.check_upstream() if params["check_upstream"] else None
        if params["check_upstream"]:
            result["upstream"] = dict((k, v) for k, v in (upstream or {}).items() if k != "lsn") or None
        if params["max_lag_bytes"] is not None or upstream:
            result["lag_bytes"] = self.lag_bytes(upstream)
        decision = decide(True, lag_bytes=result["lag_bytes"], max_lag_bytes=params["max_lag_bytes"],
                          upstream=upstream, force=params["force"])
        for warning in decision.warnings:
            self.module.warn(warning)
        if decision.action == Decision.REFUSE:
            self.module.fail_json(msg="%s: %s" % (self.describe(), decision.reason), **result)

        result["changed"] = True
        result["slots_created"] = create_missing_slots(self.conn, params["slots"] or [], dry_run=self.module.check_mode)
        if self.module.check_mode:
            result["promoted"] = True
            result["sync_relaxed"] = relax_sync(self.conn, dry_run=True) if params["relax_sync"] else None
            return result

        start = time.monotonic()
        deadline = start + params["wait_seconds"]
        if params["method"] == "pg_ctl":
            self.request_pg_ctl()
        else:
            self.request_sql()
        if params["wait"]:
            if not self.wait_promoted(deadline):
                self.module.fail_json(
                    msg="%s did not leave recovery within wait_seconds=%d. The promotion was requested and may still "
                        "complete: check pg_is_in_recovery() before retrying." % (self.describe(), params["wait_seconds"]),
                    **result)
            result["elapsed_ms"] = round((time.monotonic() - start) * 1000.0, 1)
            result["promoted"] = True
        else:
            result["promoted"] = not self.in_recovery()
            result["elapsed_ms"] = round((time.monotonic() - start) * 1000.0, 1)

        result["sync_relaxed"] = None
        if params["relax_sync"] and result["promoted"]:
            result["sync_relaxed"] = relax_sync(self.conn)
        after = self.state()
        result["lsn"] = after["lsn"]
        if not after["recovery"]:
            result["timeline_after"] = after["timeline"]
        return result


def main():
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(
        wait=dict(type="bool", default=True),
        wait_seconds=dict(type="int", default=60),
        method=dict(type="str", choices=["sql", "pg_ctl"], default="sql"),
        pg_ctl_path=dict(type="path"),
        max_lag_bytes=dict(type="int"),
        check_upstream=dict(type="bool", default=True),
        upstream_connect_timeout=dict(type="int", default=3),
        force=dict(type="bool", default=False),
        wait_for_lsn=dict(type="str"),
        wait_for_lsn_timeout=dict(type="int", default=30),
        slots=dict(type="list", elements="str"),
        relax_sync=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=postgres_mutually_exclusive(),
                           supports_check_mode=True)
    if module.params["wait_seconds"] < 1:
        module.fail_json(msg="wait_seconds must be at least 1, got %d" % module.params["wait_seconds"])
    if module.params["max_lag_bytes"] is not None and module.params["max_lag_bytes"] < 0:
        module.fail_json(msg="max_lag_bytes must be 0 or more, got %d" % module.params["max_lag_bytes"])
    if module.params["wait_for_lsn"] and not re.match(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$", module.params["wait_for_lsn"]):
        module.fail_json(msg="wait_for_lsn must be an LSN like 0/3000148 (pg_controldata's 'Latest checkpoint "
                             "location'), got %r" % module.params["wait_for_lsn"])
    for name in module.params["slots"] or []:
        if not re.match(r"^[a-z0-9_]{1,63}$", name):
            module.fail_json(msg="slots: %r is not a replication slot name (lower-case letters, digits, _)" % name)
    if module.params["upstream_connect_timeout"] < 1:
        module.fail_json(msg="upstream_connect_timeout must be at least 1 second")
    ensure_psycopg(module)

    promoter = Promoter(module)
    try:
        result = promoter.run()
    except psycopg.Error as exc:
        module.fail_json(msg="PostgreSQL error while promoting %s: %s" % (
            promoter.describe(), redact(str(exc).strip(), secrets_of(module.params))))
    finally:
        promoter.conn.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
