# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pgbouncer_reload
short_description: Reload PgBouncer, or repoint its databases at a new primary without dropping clients
version_added: 0.1.0
description:
  - Works through PgBouncer's admin console.
  - Without O(databases) it issues C(RELOAD) and reports the C(SHOW CONFIG) / C(SHOW DATABASES) differences it caused;
    C(changed) is true only when the reload changed something PgBouncer runs.
  - 'Before a plain RELOAD it compares the configuration file PgBouncer reads (C(SHOW CONFIG) C(conffile), else
    O(config_file), with its absolute C(%include) files) with what PgBouncer runs: a setting left out of the file goes
    back to its default, a C([databases]) entry added, removed or changed (host, port, dbname, user, pool sizes, pool
    mode, max_db_connections) changes that database. Check mode reports exactly that (C(changed=false) when the file
    is what PgBouncer runs) without reloading. Settings only a restart applies (C(changeable=no)) are returned in
    RV(restart_required) with a warning and are not a change of the reload.'
  - After a RELOAD, a warning says when PgBouncer still does not run what the file says (an invalid value stops
    PgBouncer reading the file, yet C(RELOAD) succeeds on the console).
  - 'With O(databases) it repoints those entries of the C([databases]) section: C(PAUSE) each database (waiting
    at most O(pause_timeout) seconds for running transactions to finish; a C(RESUME) is sent on any failure),
    rewrite the entries in O(config_file) (temporary file and rename; owner and mode kept), C(RELOAD), optionally
    C(RECONNECT) so server connections to the old host close once released, and C(RESUME). Clients stay connected;
    new queries wait during the pause.'
  - An entry that already points there, in the file and in PgBouncer's live state, is left alone (C(changed=false)).
  - With O(pause=false) (unplanned failover, the old primary is gone) it skips the pause, so in-flight transactions on
    the dead server fail at once instead of waiting.
  - Before anything is paused (and in check mode), each new target must accept connections, and with O(target_user)
    not be in recovery; otherwise the task fails and nothing changes. O(force=true) skips the check.
author: dbstack.ha contributors (@dbstack)
extends_documentation_fragment:
  - dbstack.ha.pgbouncer
options:
  config_file:
    description:
      - PgBouncer's configuration file, on the host the module runs on. Must be writable there with O(databases).
      - Without O(databases) the file PgBouncer reports as C(conffile) is compared instead when its path is absolute.
    type: path
    default: /etc/pgbouncer/pgbouncer.ini
  databases:
    description:
      - Entries of the C([databases]) section to repoint. Every name must already be in the file.
    type: list
    elements: dict
    suboptions:
      name:
        description: The database name as clients use it (the key in C([databases])).
        type: str
        required: true
      host:
        description: New backend host.
        type: str
        required: true
      port:
        description: New backend port. Left as it is when not given.
        type: int
  pause:
    description:
      - PAUSE the databases while repointing (planned switchover). V(false) for an unplanned failover.
    type: bool
    default: true
  pause_timeout:
    description:
      - Seconds to wait for PAUSE to complete; then everything is resumed and the task fails, nothing changed.
    type: int
    default: 30
  resume:
    description:
      - After the repoint, C(RESUME) every database of O(databases) that is paused, also when another task paused
        it (a switchover that paused every PgBouncer with dbstack.ha.pgbouncer_pause before stopping the old
        primary), and also when the entries already pointed there (a re-run after an interrupted switchover).
    type: bool
    default: false
  wait_for_primary:
    description:
      - Seconds to wait, before anything else, until every new target accepts connections and is not in recovery
        (needs O(target_user)); V(0) does not wait. A switchover starts this on each PgBouncer host before it stops
        the old primary, so that PgBouncer follows the moment the target is promoted. When the time is up the task
        fails and changes nothing.
    type: int
    default: 0
  force:
    description:
      - Repoint even when a new target does not accept connections, or is a standby. Without it, every new
        C(host:port) is asked first (libpq's PQping, as C(pg_isready)) and, with O(target_user), logged in to and
        refused when in recovery; a target that fails fails the task before anything is paused or written.
    type: bool
    default: false
  target_user:
    description:
      - A user that can log in to the new targets, to check that they are not in recovery (a primary). Without it
        only that they accept connections is checked.
    type: str
  target_password:
    description:
      - Password of O(target_user). Never logged.
    type: str
  target_db:
    description:
      - Database O(target_user) logs in to. Each entry's own C(dbname) when not set.
    type: str
  target_timeout:
    description:
      - Seconds each target may take to answer the check.
    type: int
    default: 5
  reconnect:
    description:
      - Issue C(RECONNECT) for each repointed database, so server connections to the old host close once released.
    type: bool
    default: true
  kill_clients:
    description:
      - After the repoint, C(KILL) then C(RESUME) each repointed database - for an unplanned failover. A client that
        was mid-query on a frozen or cut-off old primary would otherwise stay attached to that server connection,
        hang, and - should the old primary thaw - write to it through PgBouncer after the new primary took over.
        Every client of those databases is disconnected once and reconnects to the new host.
      - Only when the entries are changed by this run.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description:
      - Reports the entries it would rewrite, or the settings and databases a RELOAD would change, with the same
        RV(config_changes) / RV(database_changes) the real run returns; nothing is paused, written or reloaded.
      - When the file cannot be read the way PgBouncer reads it (missing, unreadable, a relative C(%include)), check
        mode of a plain reload reports C(changed=true) with a warning.
  diff_mode:
    support: full
    description:
      - With O(databases) the C([databases]) section of the file before and after (passwords masked).
      - Without, what PgBouncer runs before and after the RELOAD (settings a RELOAD can change, and each database).
  idempotent:
    support: full
    description: Repointing to where the entries already point changes nothing; a reload that changes nothing reports C(changed=false).
notes:
  - Run it on the PgBouncer host (it edits the configuration file there), usually with C(become=true).
  - PgBouncer 1.18 is single-threaded; PAUSE waits for transactions in transaction pooling mode, for sessions in session mode.
  - Changes of the C(auth_file) user list are not visible on the admin console; a plain reload always issues C(RELOAD)
    (it costs a few milliseconds) but does not count them as a change.
"""

EXAMPLES = r"""
- name: Reload after a configuration change
  dbstack.ha.pgbouncer_reload:
    login_unix_socket: /var/run/postgresql
    login_user: pgbouncer

- name: Planned switchover - point appdb at the new primary
  dbstack.ha.pgbouncer_reload:
    login_host: 127.0.0.1
    login_user: pgbouncer_admin
    login_password: "{{ vault_pgbouncer_admin_password }}"
    databases:
      - name: appdb
        host: pg2.example.internal
        port: 5432
    pause_timeout: 10
    # before pausing, log in to pg2 and refuse when it is still a standby
    target_user: dbstack_monitor
    target_password: "{{ vault_monitor_password }}"
  become: true
  register: repoint

- name: Unplanned failover - the old primary is gone, do not wait for it
  dbstack.ha.pgbouncer_reload:
    login_unix_socket: /var/run/postgresql
    databases:
      - name: appdb
        host: pg2.example.internal
    pause: false
  become: true
"""

RETURN = r"""
pause_ms:
  description: How long the databases were paused (PAUSE issued to RESUME done), in milliseconds. 0 without a pause.
  returned: always
  type: float
  sample: 161.4
repointed:
  description: The entries that were (or in check mode would be) rewritten, with their old and new host/port.
  returned: always
  type: dict
  sample: {"appdb": {"before": {"host": "pg1", "port": "5432"}, "after": {"host": "pg2", "port": "5432"}}}
waited_ms:
  description: With O(wait_for_primary), how long the targets took to become primaries.
  returned: with wait_for_primary
  type: float
killed:
  description: With O(kill_clients=true), the databases whose clients were disconnected (KILL, then RESUME).
  returned: when kill_clients is true and the entries changed
  type: list
  elements: str
  sample: [appdb]
resumed:
  description: With O(resume=true), the databases that were paused and were (in check mode would be) resumed.
  returned: with resume=true
  type: list
  elements: str
targets_checked:
  description: The new C(host:port) targets checked before the repoint (empty with O(force=true) or nothing to repoint).
  returned: when entries are repointed
  type: list
  elements: str
  sample: ["pg2.example.internal:5432"]
config_changes:
  description: C(SHOW CONFIG) settings that changed with the reload (or in check mode would), name to before/after.
  returned: always
  type: dict
  sample: {"default_pool_size": {"before": "20", "after": "50"}}
database_changes:
  description:
    - C(SHOW DATABASES) entries that changed with the reload (or in check mode would), name to before/after; C(null)
      for an entry added or removed.
  returned: always
  type: dict
  sample: {"appdb": {"before": {"host": "pg1", "port": "5432", "pool_size": "20"}, "after": {"host": "pg1", "port": "5432", "pool_size": "50"}}}
restart_required:
  description: Settings whose value in the file differs from what PgBouncer runs but that only a restart applies.
  returned: always
  type: dict
  sample: {"listen_port": {"before": "6432", "after": "6433"}}
reloaded:
  description: Whether RELOAD was issued.
  returned: always
  type: bool
pools:
  description: Summary of C(SHOW POOLS) at the end, per database (clients active and waiting, servers active and idle).
  returned: always
  type: dict
  sample: {"appdb": {"cl_active": 480, "cl_waiting": 0, "sv_active": 50, "sv_idle": 0}}
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils.pgbouncer import (
    AdminCommandError,
    AdminConsole,
    PauseTimeout,
    differences,
    entry_target,
    live_databases,
    pause,
    pgbouncer_common_argument_spec,
    pools_summary,
    quote_db_name,
    repoint_targets,
    resume_all,
    rewrite_problem,
    target_problem,
    write_atomically,
)
from ansible_collections.dbstack.ha.plugins.module_utils.pgbouncer_config import (
    ConfigError,
    database_entries,
    database_map,
    databases_section,
    mask_passwords,
    parse_ini,
    plan_diff,
    reload_plan,
    render_state,
    repoint,
)
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    ConnectionParamsError,
    ensure_psycopg,
    postgres_mutually_exclusive,
    psycopg,
)


def read_text(path):
    with open(path) as handle:
        return handle.read()


class Repoint(object):
    """Point [databases] entries at a new host: PAUSE, rewrite the file, RELOAD, RECONNECT, RESUME."""

    def __init__(self, module, console, result):
        self.module, self.console, self.result = module, console, result
        self.params = module.params
        self.path = self.params["config_file"]

    def targets(self):
        targets = {}
        for entry in self.params["databases"]:
            try:
                quote_db_name(entry["name"])
            except ConnectionParamsError as exc:
                self.module.fail_json(msg="databases: %s" % exc)
            targets[entry["name"]] = dict(host=entry["host"], port=entry.get("port"))
        return targets

    def run(self):
        module, path, result = self.module, self.path, self.result
        if not os.path.isfile(path):
            module.fail_json(msg="config_file %s does not exist on this host: run the module on the PgBouncer host" % path)
        text = read_text(path)
        targets = self.targets()
        try:
            new_text, changes = repoint(text, targets)
        except ConfigError as exc:
            module.fail_json(msg="%s: %s" % (path, exc))
        live = live_databases(self.console)
        names, to_pause = repoint_targets(targets, changes, live)
        result["repointed"] = changes
        if module._diff:
            result["diff"] = dict(before_header=path, after_header=path,
                                  before=mask_passwords(databases_section(text)),
                                  after=mask_passwords(databases_section(new_text)))
        if self.params["wait_for_primary"] and not module.check_mode:
            self.wait_for_primary(names or sorted(targets), new_text)
        if not names:
            self.resume_paused(sorted(targets))
            return
        if not self.params["force"]:
            self.verify_targets(names, new_text)
        result["changed"] = True
        if module.check_mode:
            self.resume_paused(sorted(targets))
            return
        problem = rewrite_problem(path) if changes else None
        if problem:
            module.fail_json(msg="config_file: %s. Nothing was paused or changed." % problem, **result)
        self.apply(names, to_pause if self.params["pause"] else [], new_text if changes else None)
        after = live_databases(self.console)
        result["database_changes"] = differences(dict((k, v) for k, v in live.items() if k in names),
                                                 dict((k, v) for k, v in after.items() if k in names))
        self.resume_paused(sorted(targets))

    def resume_paused(self, names):
        """With resume=true, RESUME those of NAMES that PgBouncer reports paused."""
        if not self.params["resume"]:
            return
        paused = [row["name"] for row in self.console.show("databases")
                  if row.get("name") in names and str(row.get("paused")) == "1"]
        self.result["resumed"] = paused
        if paused:
            self.result["changed"] = True
            if not self.module.check_mode:
                for name in paused:
                    self.console.command("RESUME %s" % name)

    def wait_for_primary(self, names, new_text):
        """Wait until each new target is a primary that accepts connections; fail (nothing changed) on timeout.

        A standby's connections survive its promotion: once one is open, a 5 ms poll of pg_is_in_recovery() on it
        sees the promotion at once, with no new connection (and its TLS and scram round trips) per poll.
        """
        params = self.params
        entries = database_entries(new_text)
        deadline = time.monotonic() + params["wait_for_primary"]
        start = time.monotonic()
        for name in names:
            host, port, dbname = entry_target(entries[name][1], name)
            problem, conn = "not asked yet", None
            while True:
                try:
                    if conn is None:
                        conn = psycopg.connect(host=host, port=port, user=params["target_user"],
                                               password=params["target_password"] or None,
                                               dbname=params["target_db"] or dbname,
                                               connect_timeout=min(params["target_timeout"], 2), autocommit=True)
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        break
                    problem = "it is a standby (in recovery), not a primary"
                except psycopg.Error as exc:
                    problem = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                    if conn is not None:
                        conn.close()
                    conn = None
                if time.monotonic() >= deadline:
                    if conn is not None:
                        conn.close()
                    self.module.fail_json(
                        msg="%s -> %s:%s did not become a primary within wait_for_primary=%d s (last: %s). Nothing was "
                            "changed." % (name, host, port, params["wait_for_primary"], problem), **self.result)
                time.sleep(0.005 if conn is not None else 0.05)
            conn.close()
        self.result["waited_ms"] = round((time.monotonic() - start) * 1000.0, 1)

    def verify_targets(self, names, new_text):
        """Fail, before anything is paused or written, when a new target cannot take the clients."""
        params = self.params
        entries = database_entries(new_text)
        checked = {}
        problems = []
        for name in names:
            host, port, dbname = entry_target(entries[name][1], name)
            login = dict(user=params["target_user"], password=params["target_password"],
                         dbname=params["target_db"] or dbname) if params["target_user"] else None
            key = (host, port, login and login["dbname"])
            if key not in checked:
                checked[key] = target_problem(host, port, params["target_timeout"], login)
            if checked[key]:
                problems.append("%s -> %s:%s: %s" % (name, host, port, checked[key]))
        self.result["targets_checked"] = sorted("%s:%s" % (host, port) for host, port, _db in checked)
        if problems:
            self.module.fail_json(
                msg="not repointing: %s. Nothing was paused or changed. Fix the host or port (or start, or promote, "
                    "the server), or set force=true to repoint anyway." % "; ".join(problems), **self.result)

    def apply(self, names, to_pause, new_text):
        module, console, result, params = self.module, self.console, self.result, self.params
        paused = []
        start = time.monotonic()
        try:
            for name in to_pause:
                pause(console, name, params["pause_timeout"])
                paused.append(name)
            if new_text is not None:
                write_atomically(self.path, new_text)
            console.command("RELOAD")
            result["reloaded"] = True
            if params["reconnect"]:
                for name in names:
                    console.command("RECONNECT %s" % name)
            if params["kill_clients"]:
                for name in names:
                    console.command("KILL %s" % name)
                    console.command("RESUME %s" % name)
                result["killed"] = list(names)
        except PauseTimeout as exc:
            resume_all(module, paused + [str(exc)])
            module.fail_json(msg="PAUSE %s did not complete within pause_timeout=%d s (long transactions?). Everything "
                                 "was resumed and %s was not changed." % (exc, params["pause_timeout"], self.path),
                             **result)
        except Exception as exc:  # pylint: disable=broad-except
            resume_all(module, paused)
            module.fail_json(msg="repointing failed, databases resumed: %s" % exc, **result)
        for name in paused:
            console.command("RESUME %s" % name)
        result["pause_ms"] = round((time.monotonic() - start) * 1000.0, 1) if paused else 0.0


class Reload(object):
    """A plain RELOAD, changed only when what PgBouncer runs changes.

    The file compared is the one RELOAD reads (SHOW CONFIG conffile, else config_file).
    """

    def __init__(self, module, console, result):
        self.module, self.console, self.result = module, console, result

    def state(self):
        return self.console.show("config"), self.console.show("databases")

    def expected(self, config_rows):
        """(settings, databases) of the file, or None with a warning when it cannot be read as PgBouncer will."""
        conffile = dict((row["key"], row.get("value")) for row in config_rows).get("conffile")
        path = conffile if conffile and os.path.isabs(conffile) else self.module.params["config_file"]
        try:
            return parse_ini(read_text(path), read_text)
        except (IOError, OSError, ConfigError) as exc:
            self.module.warn("cannot compare %s with what PgBouncer runs (%s)%s" % (
                path, exc, ": check mode reports a change" if self.module.check_mode else ""))
            return None

    def run(self):
        module, result = self.module, self.result
        config_rows, database_rows = self.state()
        wanted = self.expected(config_rows)
        if module.check_mode:
            if wanted is None:
                result["changed"] = True
                return
            plan = reload_plan(wanted[0], wanted[1], config_rows, database_rows)
            self.report(plan)
            result["changed"] = bool(plan["config_changes"] or plan["database_changes"])
            if module._diff:
                before, after = plan_diff(plan, config_rows, database_rows)
                result["diff"] = dict(before_header="PgBouncer now", after_header="after RELOAD", before=before, after=after)
            return
        self.console.command("RELOAD")
        result["reloaded"] = True
        after_config, after_databases = self.state()
        config = dict((row["key"], row.get("value")) for row in config_rows)
        new_config = dict((row["key"], row.get("value")) for row in after_config)
        dbs = database_map(database_rows)
        new_dbs = database_map(after_databases)
        result["config_changes"] = differences(config, new_config)
        result["database_changes"] = differences(dbs, new_dbs)
        result["changed"] = bool(result["config_changes"] or result["database_changes"])
        if module._diff:
            result["diff"] = dict(before_header="PgBouncer before RELOAD", after_header="PgBouncer after RELOAD",
                                  before=render_state(config, dbs), after=render_state(new_config, new_dbs))
        if wanted is not None:
            left = reload_plan(wanted[0], wanted[1], after_config, after_databases)
            self.report(left, changes=False)
            if left["config_changes"] or left["database_changes"]:
                module.warn("after RELOAD PgBouncer still does not run what its configuration file says (%s): an invalid "
                            "value stops it reading the file - see its log" % ", ".join(
                                sorted(left["config_changes"]) + sorted(left["database_changes"])))

    def report(self, plan, changes=True):
        if changes:
            self.result["config_changes"] = plan["config_changes"]
            self.result["database_changes"] = plan["database_changes"]
        self.result["restart_required"] = plan["restart_required"]
        if plan["restart_required"] and changes:
            self.module.warn("%s differ from the configuration file but only change with a restart of PgBouncer"
                             % ", ".join(sorted(plan["restart_required"])))


def main():
    argument_spec = pgbouncer_common_argument_spec()
    argument_spec.update(
        config_file=dict(type="path", default="/etc/pgbouncer/pgbouncer.ini"),
        databases=dict(type="list", elements="dict", options=dict(
            name=dict(type="str", required=True),
            host=dict(type="str", required=True),
            port=dict(type="int"),
        )),
        pause=dict(type="bool", default=True),
        pause_timeout=dict(type="int", default=30),
        reconnect=dict(type="bool", default=True),
        kill_clients=dict(type="bool", default=False),
        resume=dict(type="bool", default=False),
        wait_for_primary=dict(type="int", default=0),
        force=dict(type="bool", default=False),
        target_user=dict(type="str"),
        target_password=dict(type="str", no_log=True),
        target_db=dict(type="str"),
        target_timeout=dict(type="int", default=5),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=postgres_mutually_exclusive(),
                           supports_check_mode=True)
    if module.params["wait_for_primary"] < 0:
        module.fail_json(msg="wait_for_primary must be 0 (no wait) or more seconds, got %d" % module.params["wait_for_primary"])
    if module.params["wait_for_primary"] and not module.params["target_user"]:
        module.fail_json(msg="wait_for_primary needs target_user (and target_password): the module logs in to see when "
                             "the target leaves recovery")
    if module.params["target_timeout"] < 1:
        module.fail_json(msg="target_timeout must be at least 1 second, got %d" % module.params["target_timeout"])
    if module.params["pause_timeout"] < 1:
        module.fail_json(msg="pause_timeout must be at least 1 second, got %d" % module.params["pause_timeout"])
    if module.params["databases"] is not None and not module.params["databases"]:
        module.fail_json(msg="databases is empty: list the entries to repoint, or leave it out for a plain RELOAD")
    ensure_psycopg(module)

    console = AdminConsole(module)
    result = dict(changed=False, reloaded=False, pause_ms=0.0, repointed={}, config_changes={}, database_changes={},
                  restart_required={})
    try:
        if module.params["databases"]:
            Repoint(module, console, result).run()
        else:
            Reload(module, console, result).run()
        result["pools"] = pools_summary(console.show("pools"))
    except AdminCommandError as exc:
        module.fail_json(msg=str(exc), **result)
    finally:
        console.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
