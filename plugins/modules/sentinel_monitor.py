# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: sentinel_monitor
short_description: Make a running Redis Sentinel monitor a master with the wanted settings, without re-pointing it
version_added: 0.1.0
description:
  - Reads C(SENTINEL MASTER) and changes only what differs with C(SENTINEL SET) (quorum, down-after, failover
    timeout, parallel syncs, the master's password). Sentinel persists those changes in its own configuration file.
  - A Sentinel that already monitors O(name) keeps the master it knows, whatever O(master_host) says. After a
    failover the Sentinels know the new master; a run then reports C(changed=false) and leaves the topology alone.
  - O(master_host)/O(master_port) are used only when this Sentinel does not monitor O(name) yet
    (C(SENTINEL MONITOR)).
  - C(SENTINEL MASTER) does not show the master's password; the module reads the one Sentinel persisted from
    O(config_file) to compare it.
author: dbstack.ha contributors (@dbstack)
extends_documentation_fragment:
  - dbstack.ha.redis
options:
  login_port:
    description:
      - Port of the Sentinel.
    type: int
    default: 26379
  login_password:
    description:
      - The Sentinel's own C(requirepass), if it has one. Never logged.
    type: str
  name:
    description:
      - Name of the monitored master.
    type: str
    required: true
  state:
    description:
      - V(present) monitors O(name) with the given settings; V(absent) stops monitoring it (C(SENTINEL REMOVE)).
    type: str
    choices: [present, absent]
    default: present
  master_host:
    description:
      - Address of the master to start monitoring when this Sentinel does not know O(name). Required then.
      - Never used to change the master of an existing monitor.
    type: str
  master_port:
    description:
      - Port of O(master_host).
    type: int
    default: 6379
  quorum:
    description:
      - Sentinels that must agree the master is down before a failover starts.
    type: int
  down_after_milliseconds:
    description:
      - How long the master must not answer before a Sentinel considers it down.
    type: int
  failover_timeout:
    description:
      - Failover timeout in milliseconds.
    type: int
  parallel_syncs:
    description:
      - Replicas re-pointed at the new master at the same time after a failover.
    type: int
  auth_pass:
    description:
      - Password the Sentinel uses with the master and its replicas (their C(requirepass) or the ACL user's).
        Never logged. Not changed when not given.
    type: str
  auth_user:
    description:
      - ACL user the Sentinel uses with the master and its replicas. Not changed when not given.
    type: str
  config_file:
    description:
      - The Sentinel's configuration file on the host the module runs on, read to compare O(auth_pass) and
        O(auth_user) (C(SENTINEL MASTER) does not report them). When it cannot be read they are set on every run.
    type: path
    default: /etc/redis/sentinel.conf
attributes:
  check_mode:
    support: full
    description: Reports what it would monitor or set; nothing is sent to the Sentinel.
  diff_mode:
    support: full
    description: Shows the changed settings before and after, the password masked.
  idempotent:
    support: full
    description: Settings that already have the wanted value are left alone, and a known master is never re-pointed.
notes:
  - Run it on the Sentinel's host (for O(config_file)), usually with C(become=true).
"""

EXAMPLES = r"""
- name: Monitor the Redis master, or keep the one the Sentinels know
  dbstack.ha.sentinel_monitor:
    login_password: "{{ vault_sentinel_password }}"
    name: dbstack
    master_host: 10.0.0.11
    quorum: 2
    down_after_milliseconds: 5000
    failover_timeout: 60000
    parallel_syncs: 1
    auth_pass: "{{ vault_redis_password }}"
  become: true
  register: monitor

- name: Show the master the Sentinel knows
  ansible.builtin.debug:
    msg: "{{ monitor.master.host }}:{{ monitor.master.port }}"
"""

RETURN = r"""
monitored:
  description: Whether the Sentinel monitored O(name) before the run.
  returned: always
  type: bool
master:
  description: The master this Sentinel knows for O(name) after the run (none with O(state=absent)).
  returned: always
  type: dict
  sample: {"host": "10.0.0.12", "port": 6379}
master_differs:
  description: True when the Sentinel's master is not O(master_host) (after a failover); nothing was re-pointed.
  returned: always
  type: bool
changed_settings:
  description: Settings that were (or in check mode would be) set.
  returned: always
  type: list
  elements: str
  sample: ["down-after-milliseconds"]
before:
  description: Those settings before the run (password masked).
  returned: always
  type: dict
after:
  description: Those settings after the run (password masked).
  returned: always
  type: dict
status:
  description: Sentinel's view of the master after the run.
  returned: always
  type: dict
  sample: {"flags": "master", "num_slaves": 1, "num_other_sentinels": 2, "quorum": 2}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils import redis as redis_utils


class SentinelMonitor(object):
    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.name = module.params["name"]
        self.where = "Sentinel at %s:%s" % (module.params["login_host"], module.params["login_port"])

    def _call(self, what, *args):
        try:
            return self.client.execute_command(*args)
        except redis_utils.redis.exceptions.RedisError as exc:
            self.module.fail_json(msg="%s refused %s: %s" % (self.where, what, exc))

    def master_info(self):
        try:
            return redis_utils.pairs_to_dict(self.client.execute_command("SENTINEL", "MASTER", self.name))
        except redis_utils.redis.exceptions.ResponseError as exc:
            if "no such master" in str(exc).lower():
                return None
            self.module.fail_json(msg="%s refused SENTINEL MASTER %s: %s" % (self.where, self.name, exc))
        except redis_utils.redis.exceptions.RedisError as exc:
            self.module.fail_json(msg="%s: SENTINEL MASTER %s failed: %s" % (self.where, self.name, exc))

    def persisted_auth(self):
        path = self.module.params["config_file"]
        try:
            with open(path) as handle:
                return redis_utils.persisted_auth(handle.read(), self.name)
        except (IOError, OSError) as exc:
            self.module.warn("cannot read %s (%s): auth_pass/auth_user are set without comparing" % (path, exc))
            return None

    def desired(self):
        params = self.module.params
        wanted = {
            "quorum": params["quorum"],
            "down-after-milliseconds": params["down_after_milliseconds"],
            "failover-timeout": params["failover_timeout"],
            "parallel-syncs": params["parallel_syncs"],
        }
        return dict((k, v) for k, v in wanted.items() if v is not None)

    def auth_changes(self):
        params = self.module.params
        wanted = dict((k, v) for k, v in (("auth-pass", params["auth_pass"]), ("auth-user", params["auth_user"]))
                      if v is not None)
        if not wanted:
            return {}
        persisted = self.persisted_auth()
        if persisted is None:
            return dict((k, (None, v)) for k, v in wanted.items())
        return dict((k, (persisted.get(k), v)) for k, v in wanted.items() if persisted.get(k, "") != v)

    def check_params(self):
        params = self.module.params
        for option in ("quorum", "parallel_syncs", "down_after_milliseconds", "failover_timeout"):
            if params[option] is not None and params[option] < 1:
                self.module.fail_json(msg="option %s must be at least 1, got %s" % (option, params[option]))
        if params["auth_pass"]:
            self.module.no_log_values.add(params["auth_pass"])

    def run(self):
        self.check_params()
        params = self.module.params
        info = self.master_info()
        monitored = info is not None
        result = dict(changed=False, monitored=monitored, master={}, master_differs=False, changed_settings=[],
                      before={}, after={}, status={})
        if params["state"] == "absent":
            if monitored:
                result["changed"] = True
                result["before"] = dict(master="%s:%s" % (info.get("ip"), info.get("port")))
                if not self.module.check_mode:
                    self._call("SENTINEL REMOVE", "SENTINEL", "REMOVE", self.name)
            return self._finish(result)

        if not monitored:
            if not params["master_host"]:
                self.module.fail_json(msg="%s does not monitor %r yet: option master_host is required to start "
                                          "monitoring it" % (self.where, self.name))
            quorum = params["quorum"] or 2
            result["changed"] = True
            result["changed_settings"].append("monitor")
            result["after"]["monitor"] = "%s:%s quorum %s" % (params["master_host"], params["master_port"], quorum)
            if not self.module.check_mode:
                self._call("SENTINEL MONITOR", "SENTINEL", "MONITOR", self.name, params["master_host"],
                           params["master_port"], quorum)
                info = self.master_info()
            else:
                info = {"ip": params["master_host"], "port": str(params["master_port"]), "quorum": str(quorum)}

        changes = redis_utils.sentinel_changes(info, self.desired())
        changes.update(self.auth_changes())
        if changes:
            result["changed"] = True
            result["changed_settings"].extend(sorted(changes))
            result["before"].update(redis_utils.mask(dict((k, v[0]) for k, v in changes.items())))
            result["after"].update(redis_utils.mask(dict((k, v[1]) for k, v in changes.items())))
            if not self.module.check_mode:
                args = []
                for key in sorted(changes):
                    args.extend([key, changes[key][1]])
                self._call("SENTINEL SET %s" % ", ".join(sorted(changes)), "SENTINEL", "SET", self.name, *args)
                info = self.master_info() or info
        result["master"] = dict(host=info.get("ip"), port=int(info.get("port", 0)))
        if params["master_host"]:
            result["master_differs"] = (info.get("ip"), str(info.get("port"))) != \
                (params["master_host"], str(params["master_port"]))
        result["status"] = dict(
            flags=info.get("flags"),
            num_slaves=int(info.get("num-slaves", 0)),
            num_other_sentinels=int(info.get("num-other-sentinels", 0)),
            quorum=int(info.get("quorum", 0)),
        )
        return self._finish(result)

    def _finish(self, result):
        if self.module._diff:
            result["diff"] = dict(before=result["before"], after=result["after"])
        return result


def main():
    argument_spec = redis_utils.redis_common_argument_spec()
    argument_spec.update(
        login_port=dict(type="int", default=redis_utils.DEFAULT_SENTINEL_PORT),
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        master_host=dict(type="str"),
        master_port=dict(type="int", default=redis_utils.DEFAULT_PORT),
        quorum=dict(type="int"),
        down_after_milliseconds=dict(type="int"),
        failover_timeout=dict(type="int"),
        parallel_syncs=dict(type="int"),
        auth_pass=dict(type="str", no_log=True),
        auth_user=dict(type="str"),
        config_file=dict(type="path", default="/etc/redis/sentinel.conf"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    client = redis_utils.connect(module)
    module.exit_json(**SentinelMonitor(module, client).run())


if __name__ == "__main__":
    main()
