# -*- coding: utf-8 -*-
"""dbstack.ha.ops_lock through ansible-playbook: check, take, renew, refuse another run, release."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

from ansible_collections.dbstack.ha.tests.integration.runner import run_module


def lock(tmp_path, **args):
    base = dict(path=str(tmp_path / "state" / "operation.lock"), token="run-1", owner="alice", operation="switchover",
                ttl=600)
    base.update(args)
    return base


def test_take_renew_refuse_release(tmp_path):
    path = tmp_path / "state" / "operation.lock"
    _out, check = run_module("dbstack.ha.ops_lock", lock(tmp_path), tmp_path, check=True, diff=True)
    assert check["changed"] is True and check["action"] == "acquire" and not path.exists()

    _out, taken = run_module("dbstack.ha.ops_lock", lock(tmp_path), tmp_path, diff=True)
    assert taken["changed"] is True and taken["action"] == "acquire"
    on_disk = json.loads(path.read_text())
    assert on_disk["owner"] == "alice" and on_disk["token"] == "run-1"
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(str(path.parent)).st_mode) == 0o750

    _out, renewed = run_module("dbstack.ha.ops_lock", lock(tmp_path), tmp_path)
    assert renewed["changed"] is False and renewed["action"] == "renew"

    other = lock(tmp_path, token="run-2", owner="bob", operation="failover")
    _out, refused = run_module("dbstack.ha.ops_lock", other, tmp_path, expect_rc=2)
    assert "held by alice (switchover) since" in refused["msg"] and json.loads(path.read_text())["token"] == "run-1"
    _out, refused = run_module("dbstack.ha.ops_lock", dict(token="run-2", state="absent", path=str(path)),
                               tmp_path, expect_rc=2)
    assert "not releasing" in refused["msg"] and path.exists()

    _out, released = run_module("dbstack.ha.ops_lock", dict(token="run-1", state="absent", path=str(path)), tmp_path)
    assert released["changed"] is True and released["action"] == "release" and not path.exists()
    _out, again = run_module("dbstack.ha.ops_lock", dict(token="run-1", state="absent", path=str(path)), tmp_path)
    assert again["changed"] is False and again["action"] == "none"

    _out, bad = run_module("dbstack.ha.ops_lock", dict(token="run-1", path=str(path)), tmp_path, expect_rc=2)
    assert "owner" in bad["msg"] and "operation" in bad["msg"]
