# -*- coding: utf-8 -*-
"""Run a module the way operators do: ansible-playbook -vvv, arguments from (vaulted) variables."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the module
      %s:
%s
      register: module_result
      ignore_errors: true
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ module_result | to_json }}"
        dest: "%s"
        mode: "0600"
      check_mode: false
    - name: Fail like the module did
      ansible.builtin.fail:
        msg: module failed
      when: module_result is failed
"""


def run_module(name, args, tmp_path, expect_rc=0, check=False, diff=False):
    """Returns (everything ansible-playbook printed, the module's result dict)."""
    playbook = tmp_path / "run.yml"
    result_file = tmp_path / "result.json"
    lines = "\n".join('        %s: "{{ module_args.%s }}"' % (key, key) for key in sorted(args))
    playbook.write_text(PLAYBOOK % (name, lines, result_file))
    extra = tmp_path / "args.json"
    extra.write_text(json.dumps(dict(module_args=args, ansible_python_interpreter=sys.executable)))
    env = dict(os.environ, ANSIBLE_LIBRARY=os.path.join(HERE, "library"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    argv = ["ansible-playbook", "-i", "localhost,", "-vvv", str(playbook), "-e", "@%s" % extra]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == expect_rc, output
    if any(key in args for key in ("login_password", "dsn", "sentinel_password")):
        assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in output  # -vvv shows the masked invocation
    with open(str(result_file)) as handle:
        return output, json.load(handle)


ROLE_PLAYBOOK = """
- hosts: %s
  gather_facts: false
  roles:
    - role: %s
"""

ENTRY_POINT_PLAYBOOK = """
- hosts: %s
  gather_facts: false
  tasks:
    - name: Apply the role's entry point
      ansible.builtin.import_role:
        name: %s
        tasks_from: %s
"""


def run_role_preflight(tmp_path, role, hosts, groups, extra_vars, host_vars=None, tasks_from=None, playbook=None):
    """Apply a role (its entry point TASKS_FROM, or a PLAYBOOK that applies it) to hosts that cannot be reached
    (containers that do not exist).

    Argument-spec checks and preflight asserts run on the controller, so bad
    input must fail there; a run that got past them fails as unreachable at
    the first real task instead of changing anything. Returns (rc, output).
    groups: {group: [host, ...]}, all made children of `hosts` when that is a group.
    """
    children = {}
    for group, members in groups.items():
        children[group] = {"hosts": dict(
            (h, dict((host_vars or {}).get(h, {}), ansible_host="dbstack-no-such-container-" + h)) for h in members)}
    inventory = {"all": {"vars": {"ansible_connection": "containers.podman.podman",
                                  "ansible_python_interpreter": "/usr/bin/python3"},
                         "children": children}}
    if hosts not in groups:
        inventory["all"]["children"] = {hosts: {"children": children}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    if playbook is None:
        playbook = tmp_path / "play.yml"
        playbook.write_text(ENTRY_POINT_PLAYBOOK % (hosts, role, tasks_from) if tasks_from else ROLE_PLAYBOOK % (hosts, role))
    (tmp_path / "vars.json").write_text(json.dumps(extra_vars))
    proc = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "inventory.json"), str(playbook),
                           "-e", "@%s" % (tmp_path / "vars.json")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    return proc.returncode, proc.stdout + proc.stderr


def assert_stopped_in_preflight(rc, output, expected, first_change="Install |"):
    """The role failed on the controller with EXPECTED in its message, before contacting a host or
    reaching FIRST_CHANGE (the name of its first task that changes a host)."""
    assert rc == 2, output
    assert expected in " ".join(output.split()), output
    assert "UNREACHABLE" not in output
    assert first_change not in output


def assert_past_preflight(rc, output, first_change="Install |"):
    """Good input got through the preflight to FIRST_CHANGE, which fails only because no host exists."""
    assert rc != 0
    assert first_change in output and "UNREACHABLE" in output
