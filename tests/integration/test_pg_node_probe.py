# -*- coding: utf-8 -*-
"""dbstack.ha.pg_node_probe against a real primary, a real streaming standby and a port where nothing listens."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shutil
import time

import pytest

from ansible_collections.dbstack.ha.tests.integration.runner import run_module
from ansible_collections.dbstack.ha.tests.integration.servers import PostgresNode, free_port, lone_primary

PASSWORD = "probe-Super-Pw-4"


@pytest.fixture(scope="module")
def pair():
    with lone_primary("dbstack-probe-", PASSWORD, name="primary") as primary:
        standby = PostgresNode(primary.base, "standby", primary.runas, primary.pki, PASSWORD)
        standby.clone_from(primary).start()
        standby.wait_streaming(primary)
        try:
            yield primary, standby
        finally:
            standby.stop()
            shutil.rmtree(standby.data, ignore_errors=True)


def test_one_probe_tells_the_primary_the_standby_and_a_dead_node_apart(pair, tmp_path):
    primary, standby = pair
    dead = free_port()
    nodes = [dict(name="a", host="127.0.0.1", port=primary.port), dict(name="b", host="127.0.0.1", port=standby.port),
             dict(name="gone", host="127.0.0.1", port=dead)]
    started = time.monotonic()
    output, result = run_module("dbstack.ha.pg_node_probe", dict(nodes=nodes, login_user="postgres",
                                                                 login_password=PASSWORD), tmp_path)
    assert time.monotonic() - started < 15
    seen = result["nodes"]
    assert result["changed"] is False
    assert seen["a"]["reachable"] and seen["a"]["in_recovery"] is False and seen["a"]["writable"] is True
    assert seen["a"]["timeline"] == 1 and "/" in seen["a"]["lsn"]
    assert [r["state"] for r in seen["a"]["replicas"]] == ["streaming"]
    assert seen["b"]["reachable"] and seen["b"]["in_recovery"] is True and seen["b"]["writable"] is False
    assert seen["b"]["timeline"] == 1 and seen["b"]["upstream"]["status"] == "streaming"
    assert seen["b"]["upstream"]["port"] == primary.port
    assert seen["gone"] == dict(reachable=False, error=seen["gone"]["error"], ms=seen["gone"]["ms"])
    assert "refused" in seen["gone"]["error"] or "connect" in seen["gone"]["error"]
    assert PASSWORD not in output


def test_a_wrong_password_is_not_an_answer_and_is_never_shown(pair, tmp_path):
    primary, _standby = pair
    output, result = run_module("dbstack.ha.pg_node_probe", dict(
        nodes=[dict(name="a", host="127.0.0.1", port=primary.port)], login_user="postgres",
        login_password="wrong-" + PASSWORD), tmp_path)
    assert result["nodes"]["a"]["reachable"] is False
    assert "password authentication failed" in result["nodes"]["a"]["error"]
    assert PASSWORD not in output


def test_a_name_given_twice_is_refused(tmp_path):
    _out, result = run_module("dbstack.ha.pg_node_probe", dict(
        nodes=[dict(name="a", host="127.0.0.1"), dict(name="a", host="127.0.0.2")]), tmp_path, expect_rc=2)
    assert "option nodes names a node twice" in result["msg"]


def test_names_are_looked_up_bounded_and_verified(pair, tmp_path):
    """A host name is resolved by the module (hostaddr), the certificate still checked against the name; a name
    that does not resolve is an unreachable node with the cause, within the bound."""
    primary, _standby = pair
    nodes = [dict(name="a", host="localhost", port=primary.port),
             dict(name="vanished", host="dbstack-no-such-host.invalid", port=primary.port)]
    started = time.monotonic()
    _output, result = run_module("dbstack.ha.pg_node_probe", dict(
        nodes=nodes, login_user="postgres", login_password=PASSWORD, ssl_mode="verify-full",
        ca_cert=primary.pki["ca"]), tmp_path)
    assert time.monotonic() - started < 15
    seen = result["nodes"]
    assert seen["a"]["reachable"] is True and seen["a"]["writable"] is True, seen["a"]
    assert seen["vanished"]["reachable"] is False
    assert "dbstack-no-such-host.invalid: the name" in seen["vanished"]["error"], seen["vanished"]
    assert seen["vanished"]["ms"] < 2600
