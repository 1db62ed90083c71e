# -*- coding: utf-8 -*-
"""The pure parts of tests/lablib.py, the lab helper of the benchmarks, the load test and the lab checks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.dbstack.ha.tests import lablib

conninfo_to_dict = pytest.importorskip("psycopg.conninfo").conninfo_to_dict

PGBENCH_OUTPUT = """pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: TPC-B (sort of)>
number of clients: 500
number of transactions actually processed: 36512
number of failed transactions: 0 (0.000%)
latency average = 407.131 ms
initial connection time = 1532.977 ms
tps = 1228.106233 (without initial connection time)
pgbench: error: connection to server at "10.88.0.5", port 6432 failed: server closed the connection unexpectedly
"""


def test_every_script_dir_reaches_the_one_module():
    here = os.path.dirname(lablib.__file__)
    for link in (os.path.join(lablib.REPO, "benchmarks", "lablib.py"),
                 os.path.join(lablib.REPO, "tests", "load", "lablib.py")):
        assert os.path.islink(link) and os.path.samefile(link, os.path.join(here, "lablib.py"))


def test_no_script_imports_another_script():
    scripts = [os.path.join("benchmarks", f) for f in os.listdir(os.path.join(lablib.REPO, "benchmarks"))]
    scripts += [os.path.join("tests", "load", "pgbench_pgbouncer.py"), os.path.join("tests", "monitoring_verify.py")]
    for script in scripts:
        if not script.endswith(".py") or script.endswith("lablib.py"):
            continue
        with open(os.path.join(lablib.REPO, script)) as handle:
            text = handle.read()
        assert "spec_from_file_location" not in text, script
        assert not any(hack in text for hack in ("sys.path.insert", "sys.path.append", "sys.path[")), script
        assert ".lab\", \"credentials\"" not in text and "podman\", \"inspect\"" not in text, script


def test_conninfo_round_trips_through_libpq():
    info = lablib.conninfo(host="10.0.0.1", port=5432, user="app", password="it's a \\ pw", dbname="appdb",
                           sslmode="require", application_name=None)
    assert conninfo_to_dict(info) == dict(host="10.0.0.1", port="5432", user="app", password="it's a \\ pw",
                                          dbname="appdb", sslmode="require")
    assert conninfo_to_dict(lablib.conninfo(password=""))["password"] == ""


def test_pgpass_escapes_colons_and_backslashes(tmp_path):
    line = lablib.pgpass_line("10.0.0.1", 6432, "appdb", "app", "a:b\\c")
    assert line == "10.0.0.1:6432:appdb:app:a\\:b\\\\c\n"
    path = lablib.write_pgpass(str(tmp_path / "pgpass"), [line, lablib.pgpass_line("*", "*", "appdb", "app", "x")])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # libpq ignores a pgpass others can read
    assert open(path).read().splitlines()[1] == "*:*:appdb:app:x"


def test_parse_pgbench():
    stats = lablib.parse_pgbench(PGBENCH_OUTPUT)
    assert stats == dict(processed=36512, failed=0, tps=1228.106233, latency_ms=407.131, connection_ms=1532.977,
                         connection_errors=1, aborted=0)
    assert lablib.parse_pgbench("")["processed"] is None


def test_secrets_come_from_the_credentials_dir(tmp_path):
    (tmp_path / "postgres_app").write_text("App-Pw-1\n")
    (tmp_path / "empty").write_text("\n")
    lab = lablib.Lab("ci", credentials=str(tmp_path))
    assert lab.secret("postgres_app") == "App-Pw-1"
    with pytest.raises(SystemExit, match="make lab"):
        lab.secret("redis_password")
    with pytest.raises(SystemExit, match="empty"):
        lab.secret("empty")


def test_lab_names_dsns_and_module_arguments(tmp_path):
    for name in ("postgres_superuser", "postgres_app", "pgbouncer_admin", "redis_password", "sentinel_password"):
        (tmp_path / name).write_text("%s-secret\n" % name)
    lab = lablib.Lab("ci", credentials=str(tmp_path))
    assert lab.container("pgb1") == "ci-pgb1"
    lab._addresses.update(pg1="10.89.0.2", pgb1="10.89.0.4", redis1="10.89.0.6", mon1="10.89.0.8")  # no podman here
    assert conninfo_to_dict(lab.postgres_dsn("pg1")) == dict(
        host="10.89.0.2", port="5432", user="postgres", dbname="postgres", sslmode="require", connect_timeout="5",
        password="postgres_superuser-secret")
    assert conninfo_to_dict(lab.pgbouncer_dsn())["port"] == "6432"
    assert conninfo_to_dict(lab.pgbouncer_dsn())["user"] == "app"
    assert lab.pgbouncer_admin_args() == dict(login_unix_socket="/var/run/postgresql", login_user="pgbouncer_admin",
                                              login_password="pgbouncer_admin-secret")
    assert lab.sentinel_kwargs("redis1", socket_timeout=0.2) == dict(
        host="10.89.0.6", port=26379, password="sentinel_password-secret", socket_timeout=0.2)
    assert lab.redis_kwargs("redis1")["port"] == 6379
    assert lab.prometheus_url() == "http://10.89.0.8:9090"


def test_module_arguments_never_on_the_command_line():
    args = dict(login_password="Secret-1", databases=[dict(name="appdb", host="pg1")])
    text = lablib.templated_args(args)
    assert "Secret-1" not in text
    assert json.loads(text) == {"databases": "{{ module_args.databases }}", "login_password": "{{ module_args.login_password }}"}


def test_module_result_of_the_json_callback():
    out = json.dumps(dict(plays=[dict(tasks=[dict(hosts=dict(pgb1=dict(changed=False, pause_ms=0.0)))])]))
    assert lablib.module_result(out, "pgb1") == dict(changed=False, pause_ms=0.0)
    assert lablib.module_result("ERROR! no inventory", "pgb1") is None


def test_wait_for_returns_the_first_true_value_or_none():
    answers = iter([None, 0, "ready"])
    assert lablib.wait_for(lambda: next(answers), 5, step=0.001) == "ready"
    assert lablib.wait_for(lambda: False, 0.02, step=0.005) is None
