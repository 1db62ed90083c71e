# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ops_lock
short_description: Take or release the stack's operations lock (owner, token, expiry) on a host
version_added: 0.2.0
description:
  - The lock that keeps two operations (switchover, failover, rejoin, rotation, upgrade, drill) off the stack at
    once. It lives on the stack's hosts, not on the controller (AWX throws a job's environment away), as one JSON
    file per host with the owner, the operation, a token and an expiry.
  - Taking it when another token holds it, unexpired, fails and names the holder, the operation, since when and
    until when. An expired lock is taken over with a warning; O(force=true) takes over a live one.
  - Taking it again with the same token renews the expiry. Releasing needs the token (or O(force=true)); releasing a
    lock that is not there changes nothing.
  - The read, the decision and the write happen under an exclusive flock of C(PATH.guard), so two runs on one host
    cannot both take it. Operation playbooks take it on every host they act on and release it in an C(always).
author: dbstack.ha contributors (@dbstack)
options:
  state:
    description: V(present) takes (or renews) the lock, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  token:
    description:
      - What identifies this run's lock; generate one per run (for example
        C(lookup('ansible.builtin.password', '/dev/null', chars=['ascii_lowercase', 'digits'], length=20))) and use it
        for every take and release of the run.
    type: str
    required: true
  owner:
    description: Who holds it, shown to whoever is refused (user, controller, AWX job). Required with O(state=present).
    type: str
  operation:
    description: What the holder is doing (C(switchover), C(failover) ...). Required with O(state=present).
    type: str
  ttl:
    description:
      - Seconds until the lock expires by itself, so that a run killed half-way does not lock the stack forever.
        Set it above the operation's longest run.
    type: int
    default: 1800
  force:
    description: Take over, or release, a lock another token holds. For a holder you know is gone.
    type: bool
    default: false
  path:
    description: The lock file. Its directory is created (0750) when missing.
    type: path
    default: /var/lib/dbstack/operation.lock
attributes:
  check_mode:
    support: full
    description: Says what it would do (take, renew, take over, release, refuse) without writing.
  diff_mode:
    support: full
    description: The lock before and after (owner, operation, expiry; the token is shown, it is not a secret).
  idempotent:
    support: partial
    description:
      - Releasing twice changes nothing. Taking it again with the same token renews the expiry and reports
        C(changed=false) (the holder did not change).
notes:
  - The token is an identifier, not a secret; the lock file is 0640 root.
"""

EXAMPLES = r"""
- name: Take the stack's operations lock on every PostgreSQL host
  dbstack.ha.ops_lock:
    token: "{{ run_token }}"
    owner: "{{ lookup('ansible.builtin.env', 'USER') }} (AWX job {{ awx_job_id | default('-') }})"
    operation: switchover
    ttl: 900
  become: true

- name: Release it
  dbstack.ha.ops_lock:
    token: "{{ run_token }}"
    state: absent
  become: true
"""

RETURN = r"""
action:
  description: What was (or in check mode would be) done - C(acquire), C(renew), C(take_over), C(release) or C(none).
  returned: always
  type: str
lock:
  description: The lock after the call (null when there is none) - owner, operation, token, acquired_at, expires_at (Unix time).
  returned: always
  type: dict
previous:
  description: The lock before the call, null when there was none.
  returned: always
  type: dict
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils.ops_lock import (
    Guard,
    LockError,
    decide,
    read_lock,
    write_lock,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            token=dict(type="str", required=True, no_log=False),
            owner=dict(type="str"),
            operation=dict(type="str"),
            ttl=dict(type="int", default=1800),
            force=dict(type="bool", default=False),
            path=dict(type="path", default="/var/lib/dbstack/operation.lock"),
        ),
        required_if=[("state", "present", ("owner", "operation"))],
        supports_check_mode=True,
    )
    params = module.params
    if not params["token"].strip():
        module.fail_json(msg="token is empty: generate one per run and use it for every take and release")
    if params["ttl"] < 1:
        module.fail_json(msg="ttl must be at least 1 second, got %d" % params["ttl"])
    path = params["path"]
    directory = os.path.dirname(path)
    result = dict(changed=False, action="none", lock=None, previous=None)
    try:
        if not os.path.isdir(directory):
            if module.check_mode:
                decision = decide(None, time.time(), params["state"], params["token"], params["owner"],
                                  params["operation"], params["ttl"], params["force"])
                result.update(changed=decision["action"] in ("acquire", "take_over", "release"),
                              action=decision["action"], lock=decision["lock"])
                module.exit_json(**result)
            os.makedirs(directory, 0o750)
        with Guard(path):
            current = read_lock(path)
            decision = decide(current, time.time(), params["state"], params["token"], params["owner"],
                              params["operation"], params["ttl"], params["force"])
            result.update(previous=current, action=decision["action"],
                          lock=decision["lock"] if decision["action"] != "release" else None)
            if decision["problem"]:
                module.fail_json(msg=decision["problem"], **result)
            if decision["warning"]:
                module.warn(decision["warning"])
            result["changed"] = decision["action"] in ("acquire", "take_over", "release")
            if module._diff:
                result["diff"] = dict(before=current or {}, after=result["lock"] or {})
            if decision["action"] in ("acquire", "renew", "take_over", "release") and not module.check_mode:
                write_lock(path, result["lock"])
    except (LockError, IOError, OSError) as exc:
        module.fail_json(msg="operations lock %s: %s" % (path, exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
