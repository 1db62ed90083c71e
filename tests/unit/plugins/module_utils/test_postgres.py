# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.dbstack.ha.plugins.module_utils import postgres
from ansible_collections.dbstack.ha.tests.unit.helpers import FailJson, FakeModule
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    ConnectionParamsError,
    build_conninfo,
    describe_target,
    dsn_password,
    parse_dsn,
    postgres_common_argument_spec,
)


def params(**kwargs):
    base = dict((name, None) for name in postgres_common_argument_spec())
    base.update(kwargs)
    return base


# --- DSN forms an operator actually has in a DATABASE_URL -------------------

@pytest.mark.parametrize("dsn, expected", [
    # same host, default port
    ("postgresql://app:s3cret@localhost/appdb",
     dict(host="localhost", user="app", password="s3cret", dbname="appdb")),
    # a VM, explicit port, postgres:// scheme
    ("postgres://app:s3cret@10.0.0.5:6432/appdb",
     dict(host="10.0.0.5", port="6432", user="app", dbname="appdb")),
    # RDS with sslmode=require
    ("postgresql://app:pw@mydb.abc123.eu-west-1.rds.amazonaws.com:5432/appdb?sslmode=require",
     dict(host="mydb.abc123.eu-west-1.rds.amazonaws.com", sslmode="require")),
    # Azure with verify-full and a CA bundle; user contains '@' percent-encoded
    ("postgresql://app%40myserver:pw@myserver.postgres.database.azure.com/appdb"
     "?sslmode=verify-full&sslrootcert=/etc/ssl/certs/ca-certificates.crt",
     dict(user="app@myserver", sslmode="verify-full", sslrootcert="/etc/ssl/certs/ca-certificates.crt")),
    # Cloud SQL unix socket: no host in the authority, socket dir in ?host=
    ("postgresql://app:pw@/appdb?host=/cloudsql/my-project:europe-west1:main-db",
     dict(host="/cloudsql/my-project:europe-west1:main-db", dbname="appdb", user="app")),
    # percent-encoded password with reserved characters
    ("postgresql://app:p%40ss%3Aw%2Frd@db.example.com/appdb",
     dict(password="p@ss:w/rd")),
    # IPv6 literal
    ("postgresql://app:pw@[2001:db8::1]:5433/appdb", dict(host="2001:db8::1", port="5433")),
    # several hosts, libpq picks the writable one
    ("postgresql://app:pw@pg1:5432,pg2:5432/appdb?target_session_attrs=read-write",
     dict(host="pg1,pg2", port="5432,5432", target_session_attrs="read-write")),
    # SQLAlchemy driver suffix, as in many apps' settings
    ("postgresql+psycopg2://app:pw@db/appdb", dict(host="db", dbname="appdb")),
    ("postgresql+asyncpg://app:pw@db/appdb", dict(host="db")),
    # key/value form
    ("host=db1 port=5432 dbname=appdb user=app password='a b c' sslmode=verify-ca",
     dict(host="db1", password="a b c", sslmode="verify-ca")),
])
def test_parse_dsn_forms(dsn, expected):
    parsed = parse_dsn(dsn)
    for key, value in expected.items():
        assert parsed[key] == value, key


def test_parse_dsn_rejects_garbage_without_leaking_password():
    with pytest.raises(ConnectionParamsError) as err:
        parse_dsn("postgresql://app:Sup3rSecret@db/appdb?bogus_option=1")
    assert "Sup3rSecret" not in str(err.value)
    assert "dsn" in str(err.value)
    assert "postgresql://USER:PASSWORD@HOST" in str(err.value)


def test_parse_dsn_rejects_bad_percent_encoding_without_leaking_password():
    with pytest.raises(ConnectionParamsError) as err:
        parse_dsn("postgresql://app:bad%zzpw@db/appdb")
    assert "bad%zzpw" not in str(err.value)


@pytest.mark.parametrize("dsn, password", [
    ("postgresql://app:s3cret@db/x", "s3cret"),
    ("postgres://app:a%40b@db/x", "a%40b"),
    ("postgresql://app@db/x", None),
    ("host=db password=plain", "plain"),
    ("host=db password='quoted value'", "quoted value"),
    (None, None),
])
def test_dsn_password(dsn, password):
    assert dsn_password(dsn) == password


# --- merging options, DSN and defaults ---------------------------------------

def test_defaults_without_dsn():
    info = build_conninfo(params())
    assert info == dict(port=5432, user="postgres", dbname="postgres", sslmode="prefer", connect_timeout=10)


def test_explicit_options_override_dsn():
    info = build_conninfo(params(
        dsn="postgresql://app@db.internal:5432/appdb?sslmode=require",
        login_password="from-vault", login_port=6432, ssl_mode="verify-full"))
    assert info["host"] == "db.internal"
    assert info["user"] == "app"
    assert info["password"] == "from-vault"
    assert info["port"] == 6432
    assert info["sslmode"] == "verify-full"


def test_unix_socket_replaces_dsn_host():
    info = build_conninfo(params(dsn="postgresql://app:pw@db/appdb", login_unix_socket="/var/run/postgresql"))
    assert info["host"] == "/var/run/postgresql"


def test_host_and_socket_are_exclusive():
    with pytest.raises(ConnectionParamsError, match="login_host and login_unix_socket"):
        build_conninfo(params(login_host="db", login_unix_socket="/var/run/postgresql"))


@pytest.mark.parametrize("port", [0, 70000])
def test_port_range(port):
    with pytest.raises(ConnectionParamsError, match="login_port"):
        build_conninfo(params(login_port=port))


def test_bad_sslmode_in_dsn():
    with pytest.raises(ConnectionParamsError, match="sslmode 'verify' is not valid"):
        build_conninfo(params(dsn="postgresql://a@b/c?sslmode=verify"))


def test_verify_full_needs_existing_ca(tmp_path):
    missing = str(tmp_path / "nope.crt")
    with pytest.raises(ConnectionParamsError, match="ca_cert points to .*nope.crt"):
        build_conninfo(params(login_host="db", ssl_mode="verify-full", ca_cert=missing))
    present = tmp_path / "ca.crt"
    present.write_text("x")
    assert build_conninfo(params(login_host="db", ssl_mode="verify-full", ca_cert=str(present)))["sslrootcert"] == str(present)


def test_sslrootcert_system_is_accepted():
    info = build_conninfo(params(dsn="postgresql://a@db/c?sslmode=verify-full&sslrootcert=system"))
    assert info["sslrootcert"] == "system"


def test_client_cert_needs_key(tmp_path):
    cert = tmp_path / "c.crt"
    cert.write_text("x")
    with pytest.raises(ConnectionParamsError, match="ssl_cert and ssl_key go together"):
        build_conninfo(params(ssl_cert=str(cert)))


def test_describe_target_has_no_password():
    info = build_conninfo(params(dsn="postgresql://app:topsecret@db:5433/appdb?sslmode=require"))
    text = describe_target(info)
    assert text == "host=db port=5433 user=app dbname=appdb sslmode=require"
    assert "topsecret" not in text


# --- the argument spec as Ansible sees it ------------------------------------

def test_secrets_are_no_log():
    spec = postgres_common_argument_spec()
    assert spec["login_password"]["no_log"] is True
    assert spec["dsn"]["no_log"] is True
    assert spec["ssl_mode"]["choices"] == ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


def test_argument_spec_validates_and_masks():
    validator = ArgumentSpecValidator(postgres_common_argument_spec(),
                                      mutually_exclusive=postgres.postgres_mutually_exclusive())
    result = validator.validate(dict(login_password="pw1", dsn="postgresql://u:pw2@h/d", login_port="5433"))
    assert result.error_messages == []
    assert result.validated_parameters["login_port"] == 5433
    assert {"pw1", "postgresql://u:pw2@h/d"} <= result._no_log_values
    bad = validator.validate(dict(login_host="h", login_unix_socket="/tmp"))
    assert any("mutually exclusive" in m for m in bad.error_messages)


def test_connect_failure_message_never_has_password():
    module = FakeModule(params(login_host="127.0.0.1", login_port=1, login_user="app",
                               login_password="NeverShowMe", connect_timeout=2))
    with pytest.raises(FailJson) as err:
        postgres.connect(module)
    msg = err.value.kwargs["msg"]
    assert "host=127.0.0.1 port=1 user=app dbname=postgres sslmode=prefer" in msg
    assert "NeverShowMe" not in msg
    assert "NeverShowMe" in module.no_log_values


def test_dsn_password_is_registered_for_masking():
    module = FakeModule(params(dsn="postgresql://app:InDsnSecret@127.0.0.1:1/appdb", connect_timeout=2))
    with pytest.raises(FailJson) as err:
        postgres.connect(module)
    assert "InDsnSecret" in module.no_log_values
    assert "InDsnSecret" not in err.value.kwargs["msg"]


# --- resolve_host: a bounded name lookup for the failover probe --------------

def _answer(address):
    return [(2, 1, 6, "", (address, 5432))]


def test_resolve_host_nothing_to_resolve():
    for host in ("10.0.0.11", "::1", "/var/run/postgresql", "pg1,pg2", "", None):
        assert postgres.resolve_host(host, 5432, 2) is None


def test_resolve_host_answers():
    assert postgres.resolve_host("pg1", 5432, 2, lookup=lambda *a: _answer("10.0.0.11")) == ["10.0.0.11"]
    both = _answer("::1") + _answer("127.0.0.1") + _answer("::1")
    assert postgres.resolve_host("localhost", 5432, 2, lookup=lambda *a: both) == ["::1", "127.0.0.1"]


def test_resolve_host_overtakes_a_stalled_lookup():
    import threading
    import time
    calls = []
    release = threading.Event()

    def lookup(*_args):
        calls.append(time.monotonic())
        if len(calls) == 1:
            release.wait(5)  # the stalled one (as a resolver that does not answer)
        return _answer("10.0.0.12")

    started = time.monotonic()
    assert postgres.resolve_host("pg2", 5432, 2, retry_after=0.2, lookup=lookup) == ["10.0.0.12"]
    assert len(calls) == 2 and time.monotonic() - started < 1.0
    release.set()


def test_resolve_host_gives_up_at_the_limit():
    import threading
    import time
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(postgres.ResolveError, match="did not resolve within 0.5 s"):
        postgres.resolve_host("pg3", 5432, 0.5, retry_after=0.2,
                              lookup=lambda *a: release.wait(5) and _answer("10.0.0.13"))
    assert 0.45 < time.monotonic() - started < 1.0
    release.set()


def test_resolve_host_unknown_name():
    import socket

    def lookup(*_args):
        raise socket.gaierror(-2, "Name or service not known")

    with pytest.raises(postgres.ResolveError, match="does not resolve"):
        postgres.resolve_host("gone", 5432, 2, lookup=lookup)
