# -*- coding: utf-8 -*-
"""redis_config and sentinel_monitor against a real Redis 7 and Sentinel on loopback:
check mode changes nothing, a change is applied and persisted, the re-run is unchanged,
secrets never show, and a known master is never re-pointed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import redis

from ansible_collections.dbstack.ha.tests.integration.runner import run_module


def _redis(servers):
    return redis.Redis(host="127.0.0.1", port=servers.redis_port, password=servers.redis_password,
                       decode_responses=True)


def _sentinel(servers):
    return redis.Redis(host="127.0.0.1", port=servers.sentinel_port, password=servers.sentinel_password,
                       decode_responses=True)


def _config_args(servers, **kwargs):
    args = dict(login_port=servers.redis_port, login_password=servers.redis_password)
    args.update(kwargs)
    return args


@pytest.fixture
def restore_redis(servers):
    client = _redis(servers)
    keep = dict((name, client.config_get(name)[name]) for name in ("maxmemory", "maxmemory-policy", "masterauth"))
    yield client
    for name, value in keep.items():
        client.config_set(name, value)
    client.config_rewrite()


def test_redis_config_check_change_rerun(servers, restore_redis, tmp_path):
    client = restore_redis
    client.config_set("maxmemory", "0")
    settings = {"maxmemory": "64mb", "maxmemory-policy": "noeviction"}

    out, result = run_module("dbstack.ha.redis_config", _config_args(servers, settings=settings), tmp_path,
                             check=True, diff=True)
    assert result["changed"] is True
    assert result["changed_settings"] == ["maxmemory"]
    assert result["diff"]["after"] == {"maxmemory": "67108864"}
    assert client.config_get("maxmemory")["maxmemory"] == "0", "check mode must not change anything"
    assert result["role"]["role"] == "master"

    out, result = run_module("dbstack.ha.redis_config", _config_args(servers, settings=settings), tmp_path)
    assert result["changed"] is True and result["rewritten"] is True
    assert client.config_get("maxmemory")["maxmemory"] == "67108864"
    with open(os.path.join(servers.base, "redis.conf")) as handle:
        assert "maxmemory 64mb" in handle.read(), "CONFIG REWRITE persists the change"

    out, result = run_module("dbstack.ha.redis_config", _config_args(servers, settings=settings), tmp_path)
    assert result["changed"] is False and result["changed_settings"] == []


def test_redis_config_secret_never_shown(servers, restore_redis, tmp_path):
    secret = "masterauth-Secret-991"
    out, result = run_module("dbstack.ha.redis_config", _config_args(servers, masterauth=secret), tmp_path,
                             diff=True)
    assert result["changed"] is True and result["changed_settings"] == ["masterauth"]
    assert restore_redis.config_get("masterauth")["masterauth"] == secret
    assert secret not in out and secret not in repr(result)
    out, result = run_module("dbstack.ha.redis_config", _config_args(servers, masterauth=secret), tmp_path)
    assert result["changed"] is False


@pytest.mark.parametrize("settings, message", [
    ({"replicaof": "127.0.0.1 6380"}, "Sentinel decides"),
    ({"requirepass": "x"}, "own option requirepass"),
    ({"maxmemroy": "1gb"}, "does not know maxmemroy"),
])
def test_redis_config_refuses_bad_settings(servers, tmp_path, settings, message):
    out, result = run_module("dbstack.ha.redis_config", _config_args(servers, settings=settings), tmp_path,
                             expect_rc=2)
    assert result["failed"] is True and message in result["msg"]


def test_redis_config_wrong_password_is_clear(servers, tmp_path):
    out, result = run_module("dbstack.ha.redis_config",
                             dict(login_port=servers.redis_port, login_password="not-the-password-77"),
                             tmp_path, expect_rc=2)
    assert "refused the credentials" in result["msg"] or "WRONGPASS" in result["msg"]
    assert "not-the-password-77" not in out


def _monitor_args(servers, **kwargs):
    args = dict(login_port=servers.sentinel_port, login_password=servers.sentinel_password, name="itmaster",
                master_host="127.0.0.1", master_port=servers.redis_port,
                config_file=os.path.join(servers.base, "sentinel.conf"))
    args.update(kwargs)
    return args


def test_sentinel_monitor_lifecycle(servers, tmp_path):
    sentinel = _sentinel(servers)
    wanted = dict(quorum=1, down_after_milliseconds=4000, failover_timeout=30000, parallel_syncs=1,
                  auth_pass=servers.redis_password)
    try:
        out, result = run_module("dbstack.ha.sentinel_monitor", _monitor_args(servers, **wanted), tmp_path,
                                 check=True)
        assert result["changed"] is True and result["monitored"] is False
        with pytest.raises(redis.exceptions.ResponseError):
            sentinel.execute_command("SENTINEL", "MASTER", "itmaster")

        out, result = run_module("dbstack.ha.sentinel_monitor", _monitor_args(servers, **wanted), tmp_path,
                                 diff=True)
        assert result["changed"] is True
        assert result["master"] == {"host": "127.0.0.1", "port": servers.redis_port}
        assert servers.redis_password not in out
        assert result["after"]["auth-pass"] == "********"
        info = sentinel.sentinel_master("itmaster")
        assert info["down-after-milliseconds"] == 4000 and info["failover-timeout"] == 30000

        out, result = run_module("dbstack.ha.sentinel_monitor", _monitor_args(servers, **wanted), tmp_path)
        assert result["changed"] is False, result

        # a different master_host (what a failover looks like to a stale inventory) is never applied
        changed = _monitor_args(servers, **wanted)
        changed.update(down_after_milliseconds=5000, master_host="127.0.0.2")
        out, result = run_module("dbstack.ha.sentinel_monitor", changed, tmp_path)
        assert result["changed"] is True and result["changed_settings"] == ["down-after-milliseconds"]
        assert result["master_differs"] is True
        assert sentinel.sentinel_master("itmaster")["ip"] == "127.0.0.1"

        # a changed password is detected through the file Sentinel persisted
        changed.update(auth_pass="other-Secret-55")
        out, result = run_module("dbstack.ha.sentinel_monitor", changed, tmp_path, check=True)
        assert result["changed_settings"] == ["auth-pass"]
        assert "other-Secret-55" not in out
    finally:
        out, result = run_module("dbstack.ha.sentinel_monitor", _monitor_args(servers, state="absent"), tmp_path)
    assert result["changed"] is True
    out, result = run_module("dbstack.ha.sentinel_monitor", _monitor_args(servers, state="absent"), tmp_path)
    assert result["changed"] is False


def test_sentinel_monitor_needs_master_host_for_a_new_monitor(servers, tmp_path):
    args = _monitor_args(servers, name="unknown-master")
    del args["master_host"]
    out, result = run_module("dbstack.ha.sentinel_monitor", args, tmp_path, expect_rc=2)
    assert "master_host is required" in result["msg"]
