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
    C(changed) is true only when the reload changed something.
  - 'With O(databases) it repoints those entries of the C([databases]) section: C(PAUSE) each database (waiting
    at most O(pause_timeout) seconds for running transactions to finish; a C(RESUME) is sent on any failure),
    rewrite the entries in O(config_file) (temporary file and rename; owner and mode kept), C(RELOAD), optionally
    C(RECONNECT) so server connections to the old host close once released, and C(RESUME). Clients stay connected;
    new queries wait during the pause.'
  - An entry that already points there, in the file and in PgBouncer's live state, is left alone (C(changed=false)).
  - With O(pause=false) (unplanned failover, the old primary is gone) it skips the pause, so in-flight transactions on
    the dead server fail at once instead of waiting.
author: dbstack.ha contributors (@dbstack)
extends_documentation_fragment:
  - dbstack.ha.pgbouncer
options:
  config_file:
    description:
      - PgBouncer's configuration file, on the host the module runs on. Must be writable there with O(databases).
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
  reconnect:
    description:
      - Issue C(RECONNECT) for each repointed database, so server connections to the old host close once released.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reports the entries it would rewrite (and the diff); nothing is paused, written or reloaded.
  diff_mode:
    support: full
    description: Shows the C([databases]) section before and after.
  idempotent:
    support: full
    description: Repointing to where the entries already point changes nothing; a reload that changes nothing reports C(changed=false).
notes:
  - Run it on the PgBouncer host (it edits the configuration file there), usually with C(become=true).
  - PgBouncer 1.18 is single-threaded; PAUSE waits for transactions in transaction pooling mode, for sessions in session mode.
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
config_changes:
  description: C(SHOW CONFIG) settings that changed with the reload, name to before/after.
  returned: always
  type: dict
  sample: {"default_pool_size": {"before": "20", "after": "50"}}
database_changes:
  description: C(SHOW DATABASES) entries whose host, port or database changed with the reload.
  returned: always
  type: dict
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
import select
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils.pgbouncer import (
    AdminCommandError,
    AdminConsole,
    pgbouncer_common_argument_spec,
    quote_db_name,
    result_rows,
)
from ansible_collections.dbstack.ha.plugins.module_utils.pgbouncer_config import (
    ConfigError,
    databases_section,
    repoint,
)
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    ConnectionParamsError,
    ensure_psycopg,
    postgres_mutually_exclusive,
)

POOL_FIELDS = ("cl_active", "cl_waiting", "sv_active", "sv_idle")


class PauseTimeout(Exception):
    pass


def live_databases(console):
    return dict((row["name"], dict(host=row.get("host"), port=row.get("port"), database=row.get("database")))
                for row in console.show("databases"))


def live_config(console):
    return dict((row["key"], row["value"]) for row in console.show("config"))


def pools_summary(console):
    summary = {}
    for row in console.show("pools"):
        if row.get("database") == "pgbouncer":
            continue
        entry = summary.setdefault(row["database"], dict((f, 0) for f in POOL_FIELDS))
        for field in POOL_FIELDS:
            try:
                entry[field] += int(row.get(field) or 0)
            except ValueError:
                pass
    return summary


def differences(before, after):
    keys = set(before) | set(after)
    return dict((k, dict(before=before.get(k), after=after.get(k))) for k in sorted(keys) if before.get(k) != after.get(k))


def pause(console, name, timeout):
    """PAUSE one database, waiting at most `timeout` seconds (the command blocks until it is done)."""
    pgconn = console.conn.pgconn
    sql = "PAUSE %s" % name
    pgconn.send_query(sql.encode("utf-8"))
    deadline = time.monotonic() + timeout
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PauseTimeout(name)
        select.select([pgconn.socket], [], [], min(remaining, 0.05))
    result = pgconn.get_result()
    while result is not None:
        result_rows(result, sql)
        result = pgconn.get_result()


def write_atomically(module, path, text):
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".pgbouncer.", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        module.atomic_move(tmp, path)  # keeps the original's owner, group and mode
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def run_repoint(module, console, result):
    params = module.params
    path = params["config_file"]
    if not os.path.isfile(path):
        module.fail_json(msg="config_file %s does not exist on this host: run the module on the PgBouncer host" % path)
    with open(path) as handle:
        text = handle.read()
    targets = {}
    for entry in params["databases"]:
        try:
            quote_db_name(entry["name"])
        except ConnectionParamsError as exc:
            module.fail_json(msg="databases: %s" % exc)
        targets[entry["name"]] = dict(host=entry["host"], port=entry.get("port"))
    try:
        new_text, changes = repoint(text, targets)
    except ConfigError as exc:
        module.fail_json(msg="%s: %s" % (path, exc))

    live = live_databases(console)
    missing_live = sorted(set(targets) - set(live))
    stale = []
    for name, target in targets.items():
        entry = live.get(name, {})
        if name in changes or name in missing_live:
            continue
        if entry.get("host") != target["host"] or (target.get("port") and str(entry.get("port")) != str(target["port"])):
            stale.append(name)  # the file is right but PgBouncer has not loaded it
    result["repointed"] = changes
    if module._diff:
        result["diff"] = dict(before_header=path, after_header=path,
                              before=databases_section(text), after=databases_section(new_text))
    if not changes and not stale and not missing_live:
        return
    result["changed"] = True
    if module.check_mode:
        return

    names = sorted(set(changes) | set(stale) | set(missing_live))
    paused = []
    start = time.monotonic()
    try:
        if params["pause"]:
            for name in names:
                if name in live:
                    pause(console, name, params["pause_timeout"])
                    paused.append(name)
        if changes:
            write_atomically(module, path, new_text)
        console.command("RELOAD")
        result["reloaded"] = True
        if params["reconnect"]:
            for name in names:
                console.command("RECONNECT %s" % name)
    except PauseTimeout as exc:
        resume_all(module, paused + [str(exc)])
        module.fail_json(msg="PAUSE %s did not complete within pause_timeout=%d s (long transactions?). Everything was "
                             "resumed and %s was not changed." % (exc, params["pause_timeout"], path), **result)
    except Exception as exc:  # pylint: disable=broad-except
        resume_all(module, paused)
        module.fail_json(msg="repointing failed, databases resumed: %s" % exc, **result)
    for name in paused:
        console.command("RESUME %s" % name)
    result["pause_ms"] = round((time.monotonic() - start) * 1000.0, 1) if paused else 0.0
    after = live_databases(console)
    result["database_changes"] = differences(dict((k, v) for k, v in live.items() if k in names),
                                             dict((k, v) for k, v in after.items() if k in names))


def resume_all(module, names):
    """RESUME on a fresh admin connection: the one that sent PAUSE may still be busy."""
    if not names:
        return
    try:
        other = AdminConsole(module)
        for name in names:
            try:
                other.command("RESUME %s" % name)
            except AdminCommandError:
                pass  # "database is not paused"
        other.close()
    except Exception as exc:  # pylint: disable=broad-except
        module.warn("could not RESUME %s after a failure: %s - run RESUME on the admin console" % (", ".join(names), exc))


def run_reload(module, console, result):
    config_before, dbs_before = live_config(console), live_databases(console)
    if module.check_mode:
        result["changed"] = True
        return
    console.command("RELOAD")
    result["reloaded"] = True
    result["config_changes"] = differences(config_before, live_config(console))
    result["database_changes"] = differences(dbs_before, live_databases(console))
    result["changed"] = bool(result["config_changes"] or result["database_changes"])


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
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=postgres_mutually_exclusive(),
                           supports_check_mode=True)
    if module.params["pause_timeout"] < 1:
        module.fail_json(msg="pause_timeout must be at least 1 second, got %d" % module.params["pause_timeout"])
    if module.params["databases"] is not None and not module.params["databases"]:
        module.fail_json(msg="databases is empty: list the entries to repoint, or leave it out for a plain RELOAD")
    ensure_psycopg(module)

    console = AdminConsole(module)
    result = dict(changed=False, reloaded=False, pause_ms=0.0, repointed={}, config_changes={}, database_changes={})
    try:
        if module.params["databases"]:
            run_repoint(module, console, result)
        else:
            run_reload(module, console, result)
        result["pools"] = pools_summary(console)
    except AdminCommandError as exc:
        module.fail_json(msg=str(exc), **result)
    finally:
        console.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
