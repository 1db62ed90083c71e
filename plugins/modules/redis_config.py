# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_config
short_description: Apply settings to a running Redis or Valkey node with CONFIG SET, and persist them
version_added: 0.1.0
description:
  - Reads each setting with C(CONFIG GET), compares it with the wanted value (memory sizes such as C(1gb) and
    booleans are normalised the way Redis reports them), applies only the differences with C(CONFIG SET) and then
    C(CONFIG REWRITE), so they survive a restart without templating the node's configuration file again.
  - Redis rewrites its own configuration file (a failover's C(REPLICAOF), C(CONFIG REWRITE)); this module keeps that
    live state. It never changes the node's replication role.
  - Also returns the node's replication role (C(ROLE)), whatever O(settings) holds.
author: dbstack.ha contributors (@dbstack)
extends_documentation_fragment:
  - dbstack.ha.redis
options:
  settings:
    description:
      - Setting name to wanted value. Booleans become C(yes)/C(no), lists are joined with spaces.
      - Only settings Redis can change at run time (C(CONFIG SET)); C(replicaof) is refused (Sentinel owns it).
      - C(requirepass) and C(masterauth) are refused here (a dict is logged); use O(requirepass) and O(masterauth).
    type: dict
    default: {}
  requirepass:
    description:
      - Wanted C(requirepass) (the default user's password). Never logged; masked in the diff and the result.
      - Not changed when not given.
    type: str
  masterauth:
    description:
      - Wanted C(masterauth), the password a replica uses to its master. Never logged; masked.
      - Not changed when not given.
    type: str
  rewrite:
    description:
      - Run C(CONFIG REWRITE) after a change so that the configuration file holds the new values.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reports the settings it would change (and the diff); nothing is set or rewritten.
  diff_mode:
    support: full
    description: Shows the changed settings before and after, secrets masked.
  idempotent:
    support: full
    description: Settings that already have the wanted value are left alone; a run with nothing to change reports C(changed=false).
notes:
  - Changing C(requirepass) does not drop the module's own authenticated connection; log in with the password the
    node has now.
"""

EXAMPLES = r"""
- name: Memory limit and persistence on a live node
  dbstack.ha.redis_config:
    login_password: "{{ vault_redis_password }}"
    masterauth: "{{ vault_redis_password }}"
    settings:
      maxmemory: 2gb
      maxmemory-policy: noeviction
      appendonly: true
      min-replicas-to-write: 1
      min-replicas-max-lag: 10

- name: Only read the node's replication role
  dbstack.ha.redis_config:
    login_password: "{{ vault_redis_password }}"
  register: node
"""

RETURN = r"""
changed_settings:
  description: Names of the settings that were (or in check mode would be) changed.
  returned: always
  type: list
  elements: str
  sample: ["maxmemory"]
before:
  description: Live values of the changed settings before the run (secrets masked).
  returned: always
  type: dict
  sample: {"maxmemory": "0"}
after:
  description: Values of the changed settings after the run (secrets masked).
  returned: always
  type: dict
  sample: {"maxmemory": "2147483648"}
rewritten:
  description: Whether C(CONFIG REWRITE) ran.
  returned: always
  type: bool
role:
  description: The node's replication role from C(ROLE).
  returned: always
  type: dict
  sample: {"role": "replica", "master_host": "10.0.0.11", "master_port": 6379, "link": "connected", "replicas": []}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils import redis as redis_utils


class RedisConfig(object):
    def __init__(self, module, client):
        self.module = module
        self.client = client

    def _call(self, what, *args):
        try:
            return self.client.execute_command(*args)
        except redis_utils.redis.exceptions.RedisError as exc:
            self.module.fail_json(msg="Redis at %s:%s refused %s: %s" % (
                self.module.params["login_host"], self.module.params["login_port"], what, exc))

    def current(self, names):
        values = {}
        for name in names:
            reply = redis_utils.pairs_to_dict(self._call("CONFIG GET %s" % name, "CONFIG", "GET", name))
            values[name] = reply.get(name)
        return values

    def role(self):
        reply = self._call("ROLE", "ROLE")
        kind = reply[0]
        if kind == "master":
            replicas = [dict(host=item[0], port=int(item[1]), offset=int(item[2])) for item in reply[2]]
            return dict(role="master", offset=int(reply[1]), replicas=replicas)
        if kind in ("slave", "replica"):
            return dict(role="replica", master_host=reply[1], master_port=int(reply[2]), link=reply[3],
                        offset=int(reply[4]))
        return dict(role=kind)

    def run(self):
        desired = dict(self.module.params["settings"] or {})
        for name in desired:
            if name.lower() in ("replicaof", "slaveof"):
                self.module.fail_json(msg="option settings: %s is not a setting this module changes; Sentinel "
                                          "decides which node replicates from which" % name)
            if name.lower() in redis_utils.SECRET_SETTINGS:
                self.module.fail_json(msg="option settings: put %s in its own option %s (no_log), not in settings"
                                          % (name, name.lower()))
        for name in ("requirepass", "masterauth"):
            if self.module.params[name] is not None:
                desired[name] = self.module.params[name]
        current = self.current(sorted(desired))
        unknown = [name for name in sorted(desired) if current[name] is None]
        if unknown:
            where = "%s:%s" % (self.module.params["login_host"], self.module.params["login_port"])
            self.module.fail_json(msg="option settings: Redis at %s does not know %s (CONFIG GET returned "
                                      "nothing); check the name" % (where, ", ".join(unknown)))
        changes = redis_utils.config_changes(current, desired)
        before = redis_utils.mask(dict((k, v[0]) for k, v in changes.items()))
        after = redis_utils.mask(dict((k, v[1]) for k, v in changes.items()))
        rewritten = False
        if changes and not self.module.check_mode:
            for name in sorted(changes):
                self._call("CONFIG SET %s" % name, "CONFIG", "SET", name, changes[name][1])
            if self.module.params["rewrite"]:
                self._call("CONFIG REWRITE", "CONFIG", "REWRITE")
                rewritten = True
        result = dict(changed=bool(changes), changed_settings=sorted(changes), before=before, after=after,
                      rewritten=rewritten, role=self.role())
        if self.module._diff:
            result["diff"] = dict(before=before, after=after)
        return result


def main():
    argument_spec = redis_utils.redis_common_argument_spec()
    argument_spec.update(
        settings=dict(type="dict", default={}),
        rewrite=dict(type="bool", default=True),
        requirepass=dict(type="str", no_log=True),
        masterauth=dict(type="str", no_log=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    client = redis_utils.connect(module)
    module.exit_json(**RedisConfig(module, client).run())


if __name__ == "__main__":
    main()
