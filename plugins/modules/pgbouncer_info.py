# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pgbouncer_info
short_description: Read PgBouncer's state from its admin console (pools, databases, settings, descriptors)
version_added: 0.2.0
description:
  - Read-only. Sends the C(SHOW) commands of O(sections) on one admin-console connection and returns each as a list
    of rows, plus a summary the health checks use - clients waiting and the longest wait per pool, and the file
    descriptors PgBouncer may need against the limit of its process.
  - The descriptor figures need the module to run on the PgBouncer host, as root or PgBouncer's user (it reads
    C(/proc/PID/limits)); elsewhere they are null.
author: dbstack.ha contributors (@dbstack)
extends_documentation_fragment:
  - dbstack.ha.pgbouncer
options:
  sections:
    description:
      - The C(SHOW) commands to return, each under its own key of RV(show). C(config), C(databases), C(pools) and
        C(users) are always read (the summary needs them) but returned only when listed.
    type: list
    elements: str
    choices: [pools, stats, config, databases, users, lists, clients, servers, mem, version]
    default: [pools, databases, version]
  pid_file:
    description:
      - PgBouncer's pid file, to find its process. When not set, C(pidfile) from C(SHOW CONFIG); when that is empty
        or stale, the only process named C(pgbouncer).
    type: path
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same in check mode.
  diff_mode:
    support: none
    description: Returns state, not a change; there is nothing to diff.
  idempotent:
    support: full
    description: Never changes anything.
notes:
  - C(SHOW CLIENTS) and C(SHOW SERVERS) list one row per connection; leave them out on a busy PgBouncer unless needed.
"""

EXAMPLES = r"""
- name: Read the pools and the descriptor figures (stats user over the local socket)
  dbstack.ha.pgbouncer_info:
    login_unix_socket: /var/run/postgresql
    login_user: pgbouncer_stats
    login_password: "{{ pgbouncer_stats_password }}"
  become: true
  register: pgbouncer
  no_log: false

- name: Everything the support bundle wants
  dbstack.ha.pgbouncer_info:
    login_user: pgbouncer
    login_password: "{{ pgbouncer_admin_password }}"
    sections: [pools, stats, config, databases, users, lists, version]
  become: true
  register: pgbouncer
"""

RETURN = r"""
show:
  description: Each listed section's rows, as PgBouncer names the columns (all values are strings or null).
  returned: always
  type: dict
  sample: {"pools": [{"database": "appdb", "user": "app", "cl_active": "12", "cl_waiting": "0", "maxwait": "0",
           "maxwait_us": "0", "pool_mode": "transaction"}], "version": [{"version": "PgBouncer 1.18.0"}]}
version:
  description: PgBouncer's version string.
  returned: always
  type: str
  sample: PgBouncer 1.18.0
pools:
  description:
    - Per pool (C(database/user)), clients active and waiting, servers active and idle, and C(maxwait_seconds)
      (how long the oldest waiting client has waited). The admin console's pools are left out.
  returned: always
  type: dict
  sample: {"appdb/app": {"database": "appdb", "user": "app", "cl_active": 12, "cl_waiting": 0, "sv_active": 3,
           "sv_idle": 2, "maxwait_seconds": 0.0, "pool_mode": "transaction"}}
max_client_conn:
  description: C(max_client_conn) as PgBouncer runs it.
  returned: always
  type: int
expected_fd_use:
  description:
    - PgBouncer's worst case of open descriptors (C(max_client_conn) + 10 + each database's pool size, times the
      users unless the entry forces one); PgBouncer logs the same figure at start as C(max expected fd use).
  returned: always
  type: int
pid:
  description: PgBouncer's process id, null when it was not found.
  returned: always
  type: int
fd_limit:
  description: The soft C(Max open files) limit of that process, null when unknown.
  returned: always
  type: int
fd_open:
  description: Descriptors the process has open now, null when unknown.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils.pgbouncer import (
    ADMIN_DB,
    AdminCommandError,
    AdminConsole,
    config_map,
    expected_fd_use,
    open_files_count,
    open_files_limit,
    pgbouncer_common_argument_spec,
    read_pid,
)
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    ensure_psycopg,
    postgres_mutually_exclusive,
)

SECTIONS = ["pools", "stats", "config", "databases", "users", "lists", "clients", "servers", "mem", "version"]
ALWAYS = ("config", "databases", "pools", "users", "version")


def _number(value, cast=int):
    try:
        return cast(value)
    except (TypeError, ValueError):
        return cast(0)


def pool_rows(rows):
    """SHOW POOLS rows -> {database/user: summary}, without the admin console's own pools."""
    pools = {}
    for row in rows:
        if row.get("database") == ADMIN_DB:
            continue
        wait = _number(row.get("maxwait")) + _number(row.get("maxwait_us")) / 1e6
        pools["%s/%s" % (row.get("database"), row.get("user"))] = dict(
            database=row.get("database"), user=row.get("user"), pool_mode=row.get("pool_mode"),
            cl_active=_number(row.get("cl_active")), cl_waiting=_number(row.get("cl_waiting")),
            sv_active=_number(row.get("sv_active")), sv_idle=_number(row.get("sv_idle")),
            maxwait_seconds=round(wait, 6))
    return pools


class Info(object):
    def __init__(self, module, console):
        self.module = module
        self.console = console

    def run(self):
        wanted = self.module.params["sections"]
        show = {}
        for section in SECTIONS:
            if section in wanted or section in ALWAYS:
                show[section] = self.console.show(section)
        config = config_map(show["config"])
        pid = read_pid(self.module.params["pid_file"] or config.get("pidfile"))
        result = dict(
            changed=False,
            version=(show["version"][0].get("version") if show["version"] else None),
            pools=pool_rows(show["pools"]),
            max_client_conn=_number(config.get("max_client_conn")),
            expected_fd_use=expected_fd_use(config, show["databases"], show["users"]),
            pid=pid,
            fd_limit=open_files_limit(pid) if pid else None,
            fd_open=open_files_count(pid) if pid else None,
            show=dict((k, v) for k, v in show.items() if k in wanted),
        )
        return result


def main():
    argument_spec = pgbouncer_common_argument_spec()
    argument_spec.update(
        sections=dict(type="list", elements="str", choices=SECTIONS, default=["pools", "databases", "version"]),
        pid_file=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=postgres_mutually_exclusive(),
                           supports_check_mode=True)
    ensure_psycopg(module)
    console = AdminConsole(module)
    try:
        result = Info(module, console).run()
    except AdminCommandError as exc:
        module.fail_json(msg="%s: check that login_user is in PgBouncer's admin_users or stats_users" % exc)
    finally:
        console.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
