# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pgbouncer_pause
short_description: PAUSE or RESUME PgBouncer databases, with a bounded wait and nothing left half-paused
version_added: 0.2.0
description:
  - V(paused) sends C(PAUSE) for each database of O(databases) that is not paused yet and waits, at most
    O(timeout) seconds, for its running transactions to finish (PgBouncer answers once the servers are released).
    New queries wait meanwhile; clients stay connected. If one database does not pause in time, or anything fails,
    the databases this call paused are resumed and the task fails.
  - V(resumed) sends C(RESUME) for each database of O(databases) that is paused.
  - It reads C(SHOW DATABASES) first (its C(paused) column), so a second call changes nothing.
  - Operation playbooks PAUSE every PgBouncer at once (all or nothing - on any failure they RESUME all) before a
    primary change, and RESUME in an C(always).
author: dbstack.ha contributors (@dbstack)
extends_documentation_fragment:
  - dbstack.ha.pgbouncer
options:
  state:
    description: V(paused) or V(resumed).
    type: str
    choices: [paused, resumed]
    required: true
  databases:
    description: The databases (C([databases]) names). Every database but the admin console's when not given.
    type: list
    elements: str
  timeout:
    description: Seconds PAUSE may wait for running transactions, per database, before everything is resumed.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    description: Says which databases it would pause or resume; sends nothing.
  diff_mode:
    support: none
    description: The paused databases are returned before and after instead.
  idempotent:
    support: full
    description: Pausing paused databases, or resuming running ones, changes nothing.
"""

EXAMPLES = r"""
- name: Freeze the clients of appdb (at most 10 s waiting for transactions)
  dbstack.ha.pgbouncer_pause:
    login_unix_socket: /var/run/postgresql
    login_user: pgbouncer
    login_password: "{{ pgbouncer_admin_password }}"
    databases: [appdb]
    state: paused
    timeout: 10
  become: true

- name: Let them go
  dbstack.ha.pgbouncer_pause:
    login_unix_socket: /var/run/postgresql
    login_user: pgbouncer
    login_password: "{{ pgbouncer_admin_password }}"
    databases: [appdb]
    state: resumed
  become: true
"""

RETURN = r"""
acted_on:
  description: The databases this call paused or resumed (or in check mode would).
  returned: always
  type: list
  elements: str
paused_before:
  description: The databases that were paused before the call.
  returned: always
  type: list
  elements: str
paused:
  description: The databases paused after the call.
  returned: always
  type: list
  elements: str
pause_ms:
  description: How long the PAUSE commands took to complete (0 without a PAUSE).
  returned: always
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils.pgbouncer import (
    ADMIN_DB,
    AdminCommandError,
    AdminConsole,
    PauseTimeout,
    pause,
    pgbouncer_common_argument_spec,
    quote_db_name,
    resume_all,
)
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    ConnectionParamsError,
    ensure_psycopg,
    postgres_mutually_exclusive,
)


def paused_databases(console):
    """{name: paused?} from SHOW DATABASES, the admin console's own database left out."""
    return dict((row["name"], str(row.get("paused")) == "1") for row in console.show("databases")
                if row.get("name") and row["name"] != ADMIN_DB)


def main():
    argument_spec = pgbouncer_common_argument_spec()
    argument_spec.update(
        state=dict(type="str", choices=["paused", "resumed"], required=True),
        databases=dict(type="list", elements="str"),
        timeout=dict(type="int", default=30),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=postgres_mutually_exclusive(),
                           supports_check_mode=True)
    params = module.params
    if params["timeout"] < 1:
        module.fail_json(msg="timeout must be at least 1 second, got %d" % params["timeout"])
    if params["databases"] is not None and not params["databases"]:
        module.fail_json(msg="databases is empty: list the databases, or leave it out for all of them")
    try:
        for name in params["databases"] or []:
            quote_db_name(name)
    except ConnectionParamsError as exc:
        module.fail_json(msg="databases: %s" % exc)
    ensure_psycopg(module)

    console = AdminConsole(module)
    result = dict(changed=False, acted_on=[], paused_before=[], paused=[], pause_ms=0.0)
    try:
        state = paused_databases(console)
        names = params["databases"] or sorted(state)
        unknown = sorted(set(names) - set(state))
        if unknown:
            module.fail_json(msg="databases %s are not in PgBouncer's [databases] (it has: %s)" % (
                ", ".join(unknown), ", ".join(sorted(state)) or "none"), **result)
        result["paused_before"] = sorted(n for n, p in state.items() if p)
        want_paused = params["state"] == "paused"
        act = [n for n in names if state[n] != want_paused]
        result.update(acted_on=act, changed=bool(act))
        if module.check_mode or not act:
            result["paused"] = sorted(set(result["paused_before"]) | set(act)) if want_paused else \
                sorted(set(result["paused_before"]) - set(act))
            module.exit_json(**result)
        if want_paused:
            done = []
            start = time.monotonic()
            try:
                for name in act:
                    pause(console, name, params["timeout"])
                    done.append(name)
            except PauseTimeout as exc:
                resume_all(module, done + [str(exc)])
                module.fail_json(msg="PAUSE %s did not complete within timeout=%d s (long transactions?): the "
                                     "databases this task paused (%s) were resumed" % (
                                         exc, params["timeout"], ", ".join(done + [str(exc)])), **result)
            except Exception as exc:  # pylint: disable=broad-except
                resume_all(module, done + [n for n in act if n not in done])
                module.fail_json(msg="PAUSE failed, the databases this task paused were resumed: %s" % exc, **result)
            result["pause_ms"] = round((time.monotonic() - start) * 1000.0, 1)
        else:
            for name in act:
                console.command("RESUME %s" % name)
        result["paused"] = sorted(n for n, p in paused_databases(console).items() if p)
    except AdminCommandError as exc:
        module.fail_json(msg=str(exc), **result)
    finally:
        console.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
