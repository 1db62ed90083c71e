# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dbstack.ha.plugins.module_utils import redis as redis_utils
from ansible_collections.dbstack.ha.plugins.module_utils.redis import (
    RedisParamsError,
    client_kwargs,
    parse_sentinel_hosts,
    redis_common_argument_spec,
    sentinel_argument_spec,
)
from ansible_collections.dbstack.ha.tests.unit.helpers import FailJson, FakeModule


def params(**kwargs):
    spec = dict(redis_common_argument_spec(), **sentinel_argument_spec())
    base = dict((name, opts.get("default")) for name, opts in spec.items())
    base.update(kwargs)
    return base


def test_defaults():
    kwargs = client_kwargs(params())
    assert kwargs["host"] == "127.0.0.1"
    assert kwargs["port"] == 6379
    assert kwargs["socket_connect_timeout"] == 5.0
    assert "password" not in kwargs and "ssl" not in kwargs


def test_acl_user_needs_password():
    with pytest.raises(RedisParamsError, match="login_user .* needs login_password"):
        client_kwargs(params(login_user="app"))
    kwargs = client_kwargs(params(login_user="app", login_password="pw"))
    assert kwargs["username"] == "app" and kwargs["password"] == "pw"


def test_tls_files_need_tls(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    with pytest.raises(RedisParamsError, match="need tls=true"):
        client_kwargs(params(ca_cert=str(ca)))


def test_tls_verifies_by_default(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    kwargs = client_kwargs(params(tls=True, ca_cert=str(ca)))
    assert kwargs["ssl"] is True
    assert kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_check_hostname"] is True
    assert kwargs["ssl_ca_certs"] == str(ca)
    lab = client_kwargs(params(tls=True, validate_certs=False))
    assert lab["ssl_cert_reqs"] == "none" and lab["ssl_check_hostname"] is False


def test_tls_missing_file(tmp_path):
    with pytest.raises(RedisParamsError, match="ca_cert points to"):
        client_kwargs(params(tls=True, ca_cert=str(tmp_path / "missing.crt")))


def test_client_cert_needs_key(tmp_path):
    cert = tmp_path / "c.crt"
    cert.write_text("x")
    with pytest.raises(RedisParamsError, match="client_cert and client_key"):
        client_kwargs(params(tls=True, client_cert=str(cert)))


@pytest.mark.parametrize("bad", [dict(login_port=0), dict(login_port=65536), dict(connect_timeout=0)])
def test_bad_numbers(bad):
    with pytest.raises(RedisParamsError):
        client_kwargs(params(**bad))


@pytest.mark.parametrize("hosts, expected", [
    (["s1"], [("s1", 26379)]),
    (["s1:26380", " s2 "], [("s1", 26380), ("s2", 26379)]),
    (["[::1]:26381", "[fe80::1]"], [("::1", 26381), ("fe80::1", 26379)]),
])
def test_parse_sentinel_hosts(hosts, expected):
    assert parse_sentinel_hosts(hosts) == expected


@pytest.mark.parametrize("hosts", [[], None, ["s1:abc"]])
def test_parse_sentinel_hosts_errors(hosts):
    with pytest.raises(RedisParamsError, match="sentinel_hosts"):
        parse_sentinel_hosts(hosts)


def test_secrets_are_no_log():
    assert redis_common_argument_spec()["login_password"]["no_log"] is True
    assert sentinel_argument_spec()["sentinel_password"]["no_log"] is True


def test_connect_failure_names_target_not_password():
    module = FakeModule(params(login_port=1, login_password="RedisSecret", connect_timeout=1.0))
    with pytest.raises(FailJson) as err:
        redis_utils.connect(module)
    msg = err.value.kwargs["msg"]
    assert msg.startswith("Unable to connect to Redis at 127.0.0.1:1")
    assert "RedisSecret" not in msg
    assert "RedisSecret" in module.no_log_values


# --- live configuration comparison ---------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("0", 0), ("1gb", 1073741824), ("1G", 1000000000), ("512mb", 536870912), ("100k", 100000), ("2kb", 2048),
    ("lots", None), ("", None),
])
def test_memory_bytes(text, expected):
    assert redis_utils.memory_bytes(text) == expected


def test_config_changes_normalises_what_config_get_returns():
    current = {"maxmemory": "1073741824", "appendonly": "yes", "bind": "* -::*", "min-replicas-to-write": "0",
               "save": "3600 1 300 100"}
    desired = {"maxmemory": "1gb", "appendonly": True, "bind": "*  -::*", "min-replicas-to-write": 0,
               "save": ["3600", 1, "300", 100]}
    assert redis_utils.config_changes(current, desired) == {}


def test_config_changes_reports_before_and_after():
    changes = redis_utils.config_changes({"maxmemory": "0", "appendonly": "no"}, {"maxmemory": "64mb", "appendonly": "on"})
    assert changes == {"maxmemory": ("0", "67108864"), "appendonly": ("no", "yes")}


def test_secrets_compare_exactly_and_are_masked():
    assert redis_utils.config_changes({"requirepass": "Yes"}, {"requirepass": "yes"}) == {"requirepass": ("Yes", "yes")}
    assert redis_utils.mask({"requirepass": "x", "masterauth": "", "maxmemory": "1"}) == \
        {"requirepass": "********", "masterauth": "", "maxmemory": "1"}


def test_pairs_to_dict():
    assert redis_utils.pairs_to_dict(["name", "m", "quorum", "2"]) == {"name": "m", "quorum": "2"}
    assert redis_utils.pairs_to_dict({"quorum": 2}) == {"quorum": 2}


def test_persisted_auth_reads_sentinel_quoting():
    text = "\n".join([
        "# sentinel auth-pass dbstack commented-out",
        'sentinel auth-pass dbstack "pa ss\\"word"',
        "sentinel auth-pass other nope",
        "sentinel auth-user dbstack app",
    ])
    assert redis_utils.persisted_auth(text, "dbstack") == {"auth-pass": 'pa ss"word', "auth-user": "app"}
    assert redis_utils.persisted_auth("", "dbstack") == {}


def test_sentinel_changes_skips_unset_and_compares_strings():
    current = {"quorum": "2", "down-after-milliseconds": "5000", "parallel-syncs": "1"}
    desired = {"quorum": 2, "down-after-milliseconds": 3000, "parallel-syncs": None, "failover-timeout": 60000}
    assert redis_utils.sentinel_changes(current, desired) == {
        "down-after-milliseconds": ("5000", "3000"), "failover-timeout": (None, "60000")}
