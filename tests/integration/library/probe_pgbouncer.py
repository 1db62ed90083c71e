# -*- coding: utf-8 -*-
# Test-only module: opens PgBouncer's admin console with the shared spec.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: probe_pgbouncer
short_description: Test helper that opens PgBouncer's admin console
description: Test helper for dbstack.ha integration tests; not shipped.
author: dbstack.ha contributors
extends_documentation_fragment: [dbstack.ha.pgbouncer]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils.pgbouncer import AdminConsole, pgbouncer_common_argument_spec
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import ensure_psycopg


def main():
    module = AnsibleModule(argument_spec=pgbouncer_common_argument_spec(), supports_check_mode=True)
    ensure_psycopg(module)
    console = AdminConsole(module)
    version = console.version()
    pools = console.show("pools")
    console.close()
    module.exit_json(changed=False, version=version, pools=len(pools))


if __name__ == "__main__":
    main()
