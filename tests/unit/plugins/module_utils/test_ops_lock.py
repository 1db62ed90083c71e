# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.dbstack.ha.plugins.module_utils.ops_lock import (
    Guard,
    LockError,
    decide,
    read_lock,
    write_lock,
)

NOW = 1_800_000_000.0


def held(token="a", expires=NOW + 600, owner="alice", operation="switchover"):
    return dict(owner=owner, operation=operation, token=token, acquired_at=NOW - 60, expires_at=expires)


def take(current, token="b", force=False):
    return decide(current, NOW, "present", token, "bob", "failover", 900, force)


def test_a_free_lock_is_taken():
    result = take(None)
    assert result["action"] == "acquire" and result["problem"] == ""
    assert result["lock"] == dict(owner="bob", operation="failover", token="b", acquired_at=NOW, expires_at=NOW + 900)


def test_a_live_lock_of_another_token_refuses_naming_the_holder():
    result = take(held())
    assert result["action"] == "refuse"
    assert result["problem"].startswith("the stack's operations lock is held by alice (switchover) since ")
    assert "expires in 600 s" in result["problem"] and "force=true" in result["problem"]
    assert result["lock"] == held()


def test_an_expired_lock_is_taken_over_with_a_warning_and_force_takes_a_live_one():
    result = take(held(expires=NOW - 5))
    assert result["action"] == "take_over" and "expired 5 s ago" in result["warning"]
    result = take(held(), force=True)
    assert result["action"] == "take_over" and result["warning"].endswith("(force)")


def test_the_same_token_renews_keeping_when_it_was_taken():
    result = take(held(token="b"))
    assert result["action"] == "renew"
    assert result["lock"]["acquired_at"] == NOW - 60 and result["lock"]["expires_at"] == NOW + 900


def test_release_needs_the_token_or_force():
    assert decide(held(), NOW, "absent", "a")["action"] == "release"
    refused = decide(held(), NOW, "absent", "b")
    assert refused["action"] == "refuse" and "held by alice (switchover)" in refused["problem"]
    forced = decide(held(), NOW, "absent", "b", force=True)
    assert forced["action"] == "release" and "(force)" in forced["warning"]
    assert decide(None, NOW, "absent", "a")["action"] == "none"
    # Another run's expired lock is not ours to remove, and blocks nobody.
    assert decide(held(expires=NOW - 1), NOW, "absent", "b")["action"] == "none"


def test_write_read_and_remove(tmp_path):
    path = str(tmp_path / "operation.lock")
    assert read_lock(path) is None
    write_lock(path, dict(held(), extra="dropped"))
    assert read_lock(path) == held()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert [n for n in os.listdir(str(tmp_path)) if n.startswith(".operation.")] == []
    write_lock(path, None)
    assert not os.path.exists(path)
    write_lock(path, None)  # removing nothing is fine


def test_a_foreign_file_is_not_taken_for_a_lock(tmp_path):
    path = tmp_path / "operation.lock"
    path.write_text("not json")
    with pytest.raises(LockError, match="not a dbstack operations lock"):
        read_lock(str(path))
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(LockError):
        read_lock(str(path))
    path.write_text("")
    assert read_lock(str(path)) is None


def test_the_guard_is_exclusive_and_times_out(tmp_path):
    path = str(tmp_path / "operation.lock")
    clock = iter(range(100))
    with Guard(path):
        with pytest.raises(LockError, match="stayed locked by another process"):
            with Guard(path, timeout=3, clock=lambda: next(clock), sleep=lambda s: None):
                pass
    with Guard(path):
        pass  # released after the with
