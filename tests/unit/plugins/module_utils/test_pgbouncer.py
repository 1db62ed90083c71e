# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dbstack.ha.plugins.module_utils.pgbouncer import (
    admin_conninfo,
    pgbouncer_common_argument_spec,
    quote_db_name,
)
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import ConnectionParamsError


def params(**kwargs):
    base = dict((name, opts.get("default")) for name, opts in pgbouncer_common_argument_spec().items())
    base.update(kwargs)
    return base


def test_admin_defaults():
    info = admin_conninfo(params())
    assert info["host"] == "127.0.0.1"
    assert info["port"] == 6432
    assert info["user"] == "pgbouncer"
    assert info["dbname"] == "pgbouncer"


def test_admin_socket():
    info = admin_conninfo(params(login_unix_socket="/var/run/postgresql"))
    assert info["host"] == "/var/run/postgresql"
    assert info["dbname"] == "pgbouncer"


def test_admin_password_is_no_log():
    assert pgbouncer_common_argument_spec()["login_password"]["no_log"] is True
    assert "dsn" not in pgbouncer_common_argument_spec()


@pytest.mark.parametrize("name", ["appdb", "app_db-2", "db.v1"])
def test_db_names_ok(name):
    assert quote_db_name(name) == name


@pytest.mark.parametrize("name", ["", "app;RELOAD", "a b", "x'y"])
def test_db_names_rejected(name):
    with pytest.raises(ConnectionParamsError, match="admin console"):
        quote_db_name(name)
