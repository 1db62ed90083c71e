# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_switchover
short_description: The freeze of a planned switchover, in one process on the old primary's host
version_added: 0.2.0
description:
  - Runs on the current primary's host and does, with no Ansible round trip in between, what clients must wait for -
    C(PAUSE) every PgBouncer (all or nothing, over their admin consoles), stop the local PostgreSQL (O(stop_command),
    a fast shutdown), read its last checkpoint location (C(pg_controldata)), wait until the target standby has
    replayed past it (the proof that nothing committed is lost), create the followers' replication slots on the
    target, and promote it (C(pg_promote)).
  - It does not repoint or resume PgBouncer; each PgBouncer host does that itself the moment the target is a primary
    (dbstack.ha.pgbouncer_reload with O(dbstack.ha.pgbouncer_reload#module:wait_for_primary), started before this
    module). C(playbooks/switchover.yml) puts the two together.
  - On any failure before the promotion it starts the local PostgreSQL again (O(start_command)), RESUMEs every
    PgBouncer it paused, and fails with the step and the cause; nothing else has changed. A target that cannot be
    reached, is not a standby, or a PgBouncer that does not answer, fails the task before anything is paused.
author: dbstack.ha contributors (@dbstack)
extends_documentation_fragment:
  - dbstack.ha.postgres
options:
  pgbouncers:
    description:
      - Every PgBouncer in front of the primary, each with its admin console (C(host), C(port), C(user),
        C(password)) and the C(databases) to pause.
    type: list
    elements: dict
    default: []
    suboptions:
      host:
        description: Address of the PgBouncer.
        type: str
        required: true
      port:
        description: Its listen port.
        type: int
        default: 6432
      user:
        description: An C(admin_users) member.
        type: str
        required: true
      password:
        description: Its password. Never logged.
        type: str
      ssl_mode:
        description: TLS towards the admin console.
        type: str
        default: prefer
      databases:
        description: The databases to PAUSE.
        type: list
        elements: str
        required: true
  pause_timeout:
    description: Seconds each PAUSE may wait for running transactions.
    type: int
    default: 10
  stop_command:
    description: How to stop the local PostgreSQL with a fast shutdown, as an argv (for example C(systemctl stop postgresql@15-main)).
    type: list
    elements: str
    required: true
  start_command:
    description: How to start it again when the switchover is rolled back.
    type: list
    elements: str
    required: true
  data_directory:
    description: The local cluster's data directory (for C(pg_controldata)).
    type: path
    required: true
  pg_controldata:
    description: Path of C(pg_controldata) matching the server's major version.
    type: path
    required: true
  replay_timeout:
    description: Seconds the target may take to replay past the old primary's last checkpoint.
    type: int
    default: 30
  slots:
    description: Physical replication slots to create on the target before it is promoted, one per follower.
    type: list
    elements: str
    default: []
  relax_sync:
    description:
      - Before the freeze, while the target is still a standby, empty its C(synchronous_standby_names) with
        C(ALTER SYSTEM) when set. Once promoted it then does not make every commit wait for standbys that have not
        reconnected to it yet (with FIRST or ANY N they would hang until the followers and the old primary stream
        from it). Done before the freeze, since a configuration reload just before the promotion delays the end of
        recovery by C(wal_retrieve_retry_interval).
      - The C(sync) entry point of the C(dbstack.ha.postgres_ha) role resets the override once enough standbys
        stream again (the switchover playbook runs it). When the switchover is rolled back the override is reset at
        once.
    type: bool
    default: false
notes:
  - The connection options (O(login_host), O(login_user) ...) are the target standby's. Its user must be allowed to
    call C(pg_promote()) and create replication slots (a superuser).
attributes:
  check_mode:
    support: full
    description: Connects to the target and every PgBouncer, checks the target is a standby, and stops there.
  diff_mode:
    support: none
    description: The steps' timings and LSNs are returned instead.
  idempotent:
    support: none
    description: A switchover changes who is primary each time it runs; the playbook plans it first.
"""

EXAMPLES = r"""
- name: The freeze (on the old primary), the PgBouncer hosts' followers already started
  dbstack.ha.pg_switchover:
    login_host: pg2
    login_user: postgres
    login_password: "{{ postgres_ha_superuser_password }}"
    pgbouncers:
      - {host: pgb1, user: pgbouncer_admin, password: "{{ pgbouncer_admin_password }}", databases: [appdb]}
    stop_command: [systemctl, stop, postgresql@15-main]
    start_command: [systemctl, start, postgresql@15-main]
    data_directory: /var/lib/postgresql/15/main
    pg_controldata: /usr/lib/postgresql/15/bin/pg_controldata
    slots: [pg1]
  become: true
"""

RETURN = r"""
checkpoint_lsn:
  description: The old primary's last checkpoint location after its shutdown.
  returned: when it was stopped
  type: str
  sample: 0/3472FF0
replayed_lsn:
  description: How far the target had replayed when it was promoted (past RV(checkpoint_lsn) - RPO 0).
  returned: when promoted
  type: str
timeline_after:
  description: The new primary's timeline.
  returned: when promoted
  type: int
slots_created:
  description: The slots made on the target before the promotion.
  returned: when promoted
  type: list
  elements: str
timings_ms:
  description: Milliseconds of each step - pause, stop, controldata, replay_wait, slots, promote - and total (PAUSE sent to promoted).
  returned: always
  type: dict
promoted:
  description: Whether the target was promoted.
  returned: always
  type: bool
sync_relaxed:
  description: The C(synchronous_standby_names) that O(relax_sync) emptied (in check mode would empty) on the target, or null.
  returned: always
  type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils.pg_standby import create_missing_slots, relax_sync, restore_sync, wait_replayed_past
from ansible_collections.dbstack.ha.plugins.module_utils.pgbouncer import pause, quote_db_name
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    ConnectionParamsError,
    connect,
    ensure_psycopg,
    postgres_common_argument_spec,
    postgres_mutually_exclusive,
    psycopg,
)


class Console(object):
    """An admin console connection of one PgBouncer (the pause() helper expects .conn)."""

    def __init__(self, spec, timeout):
        self.spec = spec
        self.conn = psycopg.connect(host=spec["host"], port=spec["port"], user=spec["user"],
                                    password=spec.get("password") or None, dbname="pgbouncer",
                                    sslmode=spec.get("ssl_mode") or "prefer", connect_timeout=timeout,
                                    autocommit=True)

    def name(self):
        return "%s:%s" % (self.spec["host"], self.spec["port"])


class Switchover(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.result = dict(changed=False, promoted=False, timings_ms={}, sync_relaxed=None)
        self.paused = []  # (spec, database)
        self.start = None
        self.target = None

    def mark(self, step, since):
        now = time.monotonic()
        self.result["timings_ms"][step] = round((now - since) * 1000.0, 1)
        return now

    def fail(self, step, cause, restart=True):
        """Roll back what was done (start the old primary, RESUME) and fail naming the step."""
        notes = []
        if restart:
            rc, _out, err = self.module.run_command(self.params["start_command"])
            notes.append("the old primary was started again" if rc == 0 else
                         "starting the old primary again FAILED (%s): start it by hand" % (err or "").strip())
        resumed, left = self.resume_all()
        if resumed:
            notes.append("PgBouncer resumed (%s)" % ", ".join(resumed))
        if left:
            notes.append("RESUME FAILED on %s: run RESUME on their admin consoles" % ", ".join(left))
        if self.result["sync_relaxed"] is not None:
            try:
                restore_sync(self.target)
                self.result["sync_relaxed"] = None
                notes.append("the target's synchronous_standby_names override was reset")
            except Exception as exc:  # pylint: disable=broad-except
                notes.append("resetting the target's synchronous_standby_names FAILED (%s): run ALTER SYSTEM RESET "
                             "synchronous_standby_names and reload there" % str(exc).strip())
        self.module.fail_json(msg="switchover stopped at %s: %s. %s; the target was not promoted." % (
            step, cause, "; ".join(notes) or "nothing was changed"), **self.result)

    def resume_all(self):
        """RESUME on fresh connections (a PAUSE may still be pending on the first)."""
        resumed, left = [], []
        for spec in self.params["pgbouncers"]:
            names = [db for s, db in self.paused if s is spec]
            pending = [db for db in spec["databases"] if (spec, db) not in self.paused]
            if not names and not pending:
                continue
            try:
                console = Console(spec, 5)
                for db in names + pending:
                    try:
                        console.conn.pgconn.exec_(("RESUME %s" % db).encode("utf-8"))
                    except Exception:  # pylint: disable=broad-except
                        pass
                console.conn.close()
                if names:
                    resumed.append("%s:%s" % (spec["host"], spec["port"]))
            except Exception:  # pylint: disable=broad-except
                if names:
                    left.append("%s:%s" % (spec["host"], spec["port"]))
        return resumed, left

    def run(self):
        params, module, result = self.params, self.module, self.result
        target, _info = connect(module, service="the target standby")
        self.target = target
        if not target.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            module.fail_json(msg="the target is not a standby (it is not in recovery): nothing was changed", **result)
        consoles = []
        for spec in params["pgbouncers"]:
            try:
                consoles.append(Console(spec, 5))
            except psycopg.Error as exc:
                module.fail_json(msg="PgBouncer %s:%s did not answer on its admin console (%s): nothing was changed"
                                     % (spec["host"], spec["port"], str(exc).strip()), **result)
        if module.check_mode:
            result["changed"] = True
            result["sync_relaxed"] = relax_sync(target, dry_run=True) if params["relax_sync"] else None
            return result

        if params["relax_sync"]:
            try:
                result["sync_relaxed"] = relax_sync(target)
            except psycopg.Error as exc:
                module.fail_json(msg="relax_sync: emptying synchronous_standby_names on the target failed (%s): nothing "
                                     "else was changed" % str(exc).strip(), **result)
        t0 = self.start = time.monotonic()
        try:
            for console in consoles:
                for db in console.spec["databases"]:
                    pause(console, db, params["pause_timeout"])
                    self.paused.append((console.spec, db))
        except Exception as exc:  # pylint: disable=broad-except
            self.fail("PAUSE", "PAUSE did not complete (%s) within pause_timeout=%d s" % (exc, params["pause_timeout"]),
                      restart=False)
        for console in consoles:
            console.conn.close()
        now = self.mark("pause", t0)

        rc, _out, err = module.run_command(params["stop_command"])
        if rc != 0:
            command = " ".join(params["stop_command"])
            self.fail("the stop of the old primary", "%s exited %d: %s" % (command, rc, (err or "").strip()))
        now = self.mark("stop", now)

        rc, out, err = module.run_command([params["pg_controldata"], "-D", params["data_directory"]])
        facts = dict((k.strip(), v.strip()) for k, _sep, v in (line.partition(":") for line in out.splitlines()))
        state, checkpoint = facts.get("Database cluster state"), facts.get("Latest checkpoint location")
        if rc != 0 or state != "shut down" or not checkpoint:
            self.fail("pg_controldata", "the old primary is not cleanly shut down (rc %d, state %r): %s" % (
                rc, state, (err or "").strip()))
        result["checkpoint_lsn"] = checkpoint
        now = self.mark("controldata", now)

        replayed, reached = wait_replayed_past(target, checkpoint, params["replay_timeout"])
        if not reached:
            self.fail("the replay check", "the target replayed only up to %s, not past the old primary's last "
                                          "checkpoint %s, within replay_timeout=%d s" % (
                                              replayed, checkpoint, params["replay_timeout"]))
        result["replayed_lsn"] = replayed
        now = self.mark("replay_wait", now)

        try:
            result["slots_created"] = create_missing_slots(target, params["slots"])
        except psycopg.Error as exc:
            self.fail("the followers' slots", str(exc).strip())
        now = self.mark("slots", now)

        # From here the target may become a primary: the old primary is started again only when the promotion was
        # certainly never requested (pg_promote() raised) and the target is still in recovery.
        # pg_promote(false) and a 5 ms poll: pg_promote(true) only returns on its 100 ms polling tick.
        requested, cause = True, ""
        try:
            if not target.execute("SELECT pg_promote(false)").fetchone()[0]:
                cause = "pg_promote() refused (a promotion already under way?)"
            deadline = time.monotonic() + 60
            while target.execute("SELECT pg_is_in_recovery()").fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.005)
        except psycopg.Error as exc:
            requested, cause = False, str(exc).strip()
        try:
            in_recovery = target.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        except psycopg.Error as exc:
            in_recovery, cause = None, "%s pg_is_in_recovery() failed: %s" % (cause, str(exc).strip())
        if in_recovery and not requested:
            self.fail("the promotion", cause)
        if in_recovery is not False:
            self.result["promoted"] = None
            module.fail_json(msg="switchover: the promotion was requested but the target is %s (%s). The old primary "
                                 "was NOT started again (two primaries are worse than none) and PgBouncer stays paused "
                                 "until the followers see a primary or time out: check both nodes "
                                 "(playbooks/health.yml) before starting anything." % (
                                     "still in recovery" if in_recovery else "in an unknown state", cause.strip()),
                             **result)
        walfile = target.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
        result.update(changed=True, promoted=True, timeline_after=int(walfile[:8], 16))
        self.mark("promote", now)
        self.mark("total", t0)
        target.close()
        return result


def main():
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(
        pgbouncers=dict(type="list", elements="dict", default=[], options=dict(
            host=dict(type="str", required=True),
            port=dict(type="int", default=6432),
            user=dict(type="str", required=True),
            password=dict(type="str", no_log=True),
            ssl_mode=dict(type="str", default="prefer"),
            databases=dict(type="list", elements="str", required=True),
        )),
        pause_timeout=dict(type="int", default=10),
        stop_command=dict(type="list", elements="str", required=True),
        start_command=dict(type="list", elements="str", required=True),
        data_directory=dict(type="path", required=True),
        pg_controldata=dict(type="path", required=True),
        replay_timeout=dict(type="int", default=30),
        slots=dict(type="list", elements="str", default=[]),
        relax_sync=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=postgres_mutually_exclusive(),
                           supports_check_mode=True)
    for name in ("pause_timeout", "replay_timeout"):
        if module.params[name] < 1:
            module.fail_json(msg="%s must be at least 1 second, got %d" % (name, module.params[name]))
    try:
        for spec in module.params["pgbouncers"]:
            for db in spec["databases"]:
                quote_db_name(db)
    except ConnectionParamsError as exc:
        module.fail_json(msg="pgbouncers: %s" % exc)
    ensure_psycopg(module)
    module.exit_json(**Switchover(module).run())


if __name__ == "__main__":
    main()
