# -*- coding: utf-8 -*-
# Test-only module: connects to Redis (or asks Sentinels) with the shared spec.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: probe_redis
short_description: Test helper that connects with the shared Redis options
description: Test helper for dbstack.ha integration tests; not shipped.
author: dbstack.ha contributors
extends_documentation_fragment: [dbstack.ha.redis, dbstack.ha.redis.sentinel]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils.redis import (
    connect,
    redis_common_argument_spec,
    sentinel_argument_spec,
    sentinel_master,
)


def main():
    spec = redis_common_argument_spec()
    spec.update(sentinel_argument_spec())
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if module.params["sentinel_hosts"]:
        host, port = sentinel_master(module)
        module.exit_json(changed=False, master_host=host, master_port=port)
    client = connect(module)
    role = client.execute_command("ROLE")[0]
    module.exit_json(changed=False, role=role)


if __name__ == "__main__":
    main()
