# -*- coding: utf-8 -*-
# Test-only module: connects with the shared PostgreSQL spec and reports the
# session, so integration tests see the module_utils exactly as a module does.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: probe_postgres
short_description: Test helper that connects with the shared PostgreSQL options
description: Test helper for dbstack.ha integration tests; not shipped.
author: dbstack.ha contributors
extends_documentation_fragment: [dbstack.ha.postgres]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    connect,
    ensure_psycopg,
    postgres_common_argument_spec,
    postgres_mutually_exclusive,
)


def main():
    module = AnsibleModule(argument_spec=postgres_common_argument_spec(),
                           mutually_exclusive=postgres_mutually_exclusive(),
                           supports_check_mode=True)
    ensure_psycopg(module)
    conn, target = connect(module)
    row = conn.execute("SELECT current_user, current_database(), "
                       "coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)").fetchone()
    conn.close()
    module.exit_json(changed=False, user=row[0], database=row[1], ssl=row[2], target=target)


if __name__ == "__main__":
    main()
