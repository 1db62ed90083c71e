# -*- coding: utf-8 -*-
"""The shared connection code against real servers, directly and through Ansible."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dbstack.ha.plugins.module_utils import pgbouncer as pgb_utils
from ansible_collections.dbstack.ha.plugins.module_utils import postgres as pg_utils
from ansible_collections.dbstack.ha.plugins.module_utils import redis as redis_utils
from ansible_collections.dbstack.ha.tests.integration.runner import run_module
from ansible_collections.dbstack.ha.tests.integration.servers import make_pki
from ansible_collections.dbstack.ha.tests.unit.helpers import FailJson, FakeModule


def pg_params(**kwargs):
    base = dict((name, None) for name in pg_utils.postgres_common_argument_spec())
    base.update(kwargs)
    return base


def pgb_params(**kwargs):
    base = dict((name, opts.get("default")) for name, opts in pgb_utils.pgbouncer_common_argument_spec().items())
    base.update(kwargs)
    return base


def redis_params(**kwargs):
    spec = dict(redis_utils.redis_common_argument_spec(), **redis_utils.sentinel_argument_spec())
    base = dict((name, opts.get("default")) for name, opts in spec.items())
    base.update(kwargs)
    return base


def session_of(conn):
    return conn.execute("SELECT current_user, current_database(), "
                        "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())").fetchone()


# --- PostgreSQL ---------------------------------------------------------------

@pytest.mark.parametrize("mode, encrypted", [("disable", False), ("require", True), ("verify-full", True)])
def test_pg_tcp_sslmodes(servers, mode, encrypted):
    module = FakeModule(pg_params(login_host="localhost", login_port=servers.pg_port, login_user="app",
                                  login_password=servers.app_password, login_db="appdb",
                                  ssl_mode=mode, ca_cert=servers.pki["ca"]))
    conn, target = pg_utils.connect(module)
    assert session_of(conn) == ("app", "appdb", encrypted)
    assert "password" not in target
    conn.close()


def test_pg_dsn_verify_full_in_url(servers):
    dsn = "postgresql://app:%s@localhost:%d/appdb?sslmode=verify-full&sslrootcert=%s" % (
        servers.app_password, servers.pg_port, servers.pki["ca"])
    conn = pg_utils.connect(FakeModule(pg_params(dsn=dsn)))[0]
    assert session_of(conn) == ("app", "appdb", True)
    conn.close()


def test_pg_dsn_without_password_plus_vaulted_password(servers):
    dsn = "postgres://app@127.0.0.1:%d/appdb?sslmode=require" % servers.pg_port
    conn = pg_utils.connect(FakeModule(pg_params(dsn=dsn, login_password=servers.app_password)))[0]
    assert session_of(conn) == ("app", "appdb", True)
    conn.close()


def test_pg_sqlalchemy_and_keyword_dsn(servers):
    for dsn in ("postgresql+psycopg2://app:%s@127.0.0.1:%d/appdb" % (servers.app_password, servers.pg_port),
                "host=127.0.0.1 port=%d dbname=appdb user=app password='%s' sslmode=require"
                % (servers.pg_port, servers.app_password)):
        conn = pg_utils.connect(FakeModule(pg_params(dsn=dsn)))[0]
        assert session_of(conn)[:2] == ("app", "appdb")
        conn.close()


def test_pg_unix_socket_dsn_form(servers):
    """The Cloud SQL form: no host in the URL, the socket directory in ?host=."""
    dsn = "postgresql://app:%s@/appdb?host=%s&port=%d" % (servers.app_password, servers.socket_dir, servers.pg_port)
    conn, target = pg_utils.connect(FakeModule(pg_params(dsn=dsn)))
    assert session_of(conn) == ("app", "appdb", False)  # no SSL over a Unix socket
    assert target["host"] == servers.socket_dir
    conn.close()


def test_pg_login_unix_socket(servers):
    module = FakeModule(pg_params(login_unix_socket=servers.socket_dir, login_port=servers.pg_port,
                                  login_password=servers.pg_password))
    conn = pg_utils.connect(module)[0]
    assert session_of(conn)[:2] == ("postgres", "postgres")
    assert pg_utils.server_version(conn) >= 150000
    conn.close()


def test_pg_wrong_password_names_target_not_password(servers):
    module = FakeModule(pg_params(login_host="127.0.0.1", login_port=servers.pg_port, login_user="app",
                                  login_password="Wrong-Pw-77", login_db="appdb", ssl_mode="require"))
    with pytest.raises(FailJson) as err:
        pg_utils.connect(module)
    msg = err.value.kwargs["msg"]
    assert "host=127.0.0.1 port=%d user=app dbname=appdb sslmode=require" % servers.pg_port in msg
    assert "password authentication failed" in msg
    assert "Wrong-Pw-77" not in msg


def test_pg_unreachable(servers):
    module = FakeModule(pg_params(login_host="127.0.0.1", login_port=1, login_password="x", connect_timeout=2))
    with pytest.raises(FailJson) as err:
        pg_utils.connect(module)
    assert "Unable to connect to PostgreSQL (host=127.0.0.1 port=1" in err.value.kwargs["msg"]


def test_pg_verify_full_rejects_foreign_ca(servers, tmp_path):
    other = make_pki(str(tmp_path), ca_name=u"some other CA")
    module = FakeModule(pg_params(login_host="localhost", login_port=servers.pg_port, login_user="app",
                                  login_password=servers.app_password, ssl_mode="verify-full", ca_cert=other["ca"]))
    with pytest.raises(FailJson) as err:
        pg_utils.connect(module)
    assert "certificate verify failed" in err.value.kwargs["msg"]


# --- PgBouncer ----------------------------------------------------------------

def test_pgbouncer_admin_console(servers):
    console = pgb_utils.AdminConsole(FakeModule(pgb_params(login_port=servers.pgb_port, login_user="pgbadmin",
                                                           login_password=servers.admin_password)))
    assert console.version().startswith("PgBouncer 1.")
    databases = dict((row["name"], row) for row in console.show("databases"))
    assert databases["appdb"]["port"] == str(servers.pg_port)
    assert console.command("RELOAD") == []
    with pytest.raises(pgb_utils.AdminCommandError, match="PgBouncer rejected"):
        console.command("SHOW NOSUCHTHING")
    console.close()


def test_pgbouncer_admin_over_unix_socket_and_tls(servers):
    for extra in (dict(login_unix_socket=servers.socket_dir),
                  dict(login_host="localhost", ssl_mode="verify-full", ca_cert=servers.pki["ca"])):
        console = pgb_utils.AdminConsole(FakeModule(pgb_params(login_port=servers.pgb_port, login_user="pgbadmin",
                                                               login_password=servers.admin_password, **extra)))
        assert console.show("pools") is not None
        console.close()


def test_pgbouncer_client_scram_transaction_mode(servers):
    module = FakeModule(pg_params(login_host="127.0.0.1", login_port=servers.pgb_port, login_user="app",
                                  login_password=servers.app_password, login_db="appdb"))
    conn = pg_utils.connect(module)[0]
    assert conn.execute("SELECT current_user, inet_server_port()").fetchone() == ("app", servers.pg_port)
    conn.close()


def test_pgbouncer_wrong_admin_password(servers):
    module = FakeModule(pgb_params(login_port=servers.pgb_port, login_user="pgbadmin", login_password="Bad-Admin-88"))
    with pytest.raises(FailJson) as err:
        pgb_utils.AdminConsole(module)
    msg = err.value.kwargs["msg"]
    assert "port=%d user=pgbadmin dbname=pgbouncer" % servers.pgb_port in msg
    assert "Bad-Admin-88" not in msg


# --- Redis and Sentinel -------------------------------------------------------

def test_redis_password_and_acl_user(servers):
    client = redis_utils.connect(FakeModule(redis_params(login_port=servers.redis_port,
                                                         login_password=servers.redis_password)))
    client.set("dbstack:test", "1")
    assert client.execute_command("ROLE")[0] == "master"
    acl = redis_utils.connect(FakeModule(redis_params(login_port=servers.redis_port, login_user="app",
                                                      login_password=servers.redis_app_password)))
    assert acl.get("dbstack:test") == "1"
    assert acl.acl_whoami() == "app"


def test_redis_tls_verified(servers):
    client = redis_utils.connect(FakeModule(redis_params(login_host="localhost", login_port=servers.redis_tls_port,
                                                         login_password=servers.redis_password, tls=True,
                                                         ca_cert=servers.pki["ca"])))
    assert client.ping() is True


def test_redis_wrong_password(servers):
    module = FakeModule(redis_params(login_port=servers.redis_port, login_password="Wrong-Redis-99"))
    with pytest.raises(FailJson) as err:
        redis_utils.connect(module)
    msg = err.value.kwargs["msg"]
    assert "127.0.0.1:%d" % servers.redis_port in msg
    assert "Wrong-Redis-99" not in msg


def test_sentinel_finds_master(servers):
    module = FakeModule(redis_params(sentinel_hosts=["127.0.0.1:%d" % servers.sentinel_port],
                                     sentinel_password=servers.sentinel_password))
    assert redis_utils.sentinel_master(module) == ("127.0.0.1", servers.redis_port)


def test_sentinel_unknown_master(servers):
    module = FakeModule(redis_params(sentinel_hosts=["127.0.0.1:%d" % servers.sentinel_port],
                                     sentinel_password=servers.sentinel_password, sentinel_master_name="nope"))
    with pytest.raises(FailJson, match="No Sentinel in 127.0.0.1:%d knows a master named 'nope'" % servers.sentinel_port):
        redis_utils.sentinel_master(module)


# --- Through Ansible: no secret in the output, even at -vvv --------------------

def test_ansible_postgres_ok_and_wrong_password_masked(servers, tmp_path):
    ok = run_module("probe_postgres", dict(dsn="postgresql://app:%s@localhost:%d/appdb?sslmode=verify-full"
                                           % (servers.app_password, servers.pg_port),
                                           ca_cert=servers.pki["ca"]), tmp_path, 0)[0]
    assert "ssl: true" in ok
    assert servers.app_password not in ok
    bad = run_module("probe_postgres", dict(login_host="127.0.0.1", login_port=servers.pg_port, login_user="app",
                                            login_password="Leak-Canary-Pw-1", login_db="appdb"), tmp_path, 2)[0]
    assert "password authentication failed" in bad
    assert "Leak-Canary-Pw-1" not in bad
    bad_dsn = run_module("probe_postgres", dict(dsn="postgresql://app:Leak-Canary-Pw-2@127.0.0.1:%d/appdb"
                                                % servers.pg_port), tmp_path, 2)[0]
    assert "Leak-Canary-Pw-2" not in bad_dsn


def test_ansible_pgbouncer_and_redis_masked(servers, tmp_path):
    out = run_module("probe_pgbouncer", dict(login_port=servers.pgb_port, login_user="pgbadmin",
                                             login_password=servers.admin_password), tmp_path, 0)[0]
    assert "version: PgBouncer 1." in out
    assert servers.admin_password not in out
    bad = run_module("probe_redis", dict(login_port=servers.redis_port, login_password="Leak-Canary-Pw-3"), tmp_path, 2)[0]
    assert "refused the credentials" in bad or "WRONGPASS" in bad
    assert "Leak-Canary-Pw-3" not in bad
    master = run_module("probe_redis", dict(sentinel_hosts=["127.0.0.1:%d" % servers.sentinel_port],
                                            sentinel_password=servers.sentinel_password), tmp_path, 0)[0]
    assert "master_port: %d" % servers.redis_port in master
    assert servers.sentinel_password not in master
