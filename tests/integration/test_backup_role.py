# -*- coding: utf-8 -*-
"""The backup role: bad input stops each entry point before any host is contacted (see
runner.run_role_preflight), the playbooks still take their former variable names, and the metrics
textfile is written and carried over like node exporter needs it. The backups themselves are
dbstack.ha.pg_backup's (test_pg_backup.py) and the lab end-to-end run's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.dbstack.ha.tests.integration.runner import (
    assert_past_preflight,
    assert_stopped_in_preflight,
    run_role_preflight,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAIR = {"postgres_primary": ["pg1"], "postgres_standby": ["pg2"]}
GOOD = dict(backup_databases=["appdb"])
# The first task that contacts a host: asking the PostgreSQL hosts which one is the primary.
ASKS = "Current primary | Ask each PostgreSQL server"


def run_entry(tmp_path, extra, tasks_from=None):
    return run_role_preflight(tmp_path, "dbstack.ha.backup", "postgres", PAIR, extra, tasks_from=tasks_from)


@pytest.mark.parametrize("tasks_from, extra, expected", [
    (None, dict(backup_databases=[]), "backup_databases must list database names"),
    (None, dict(GOOD, backup_dest="relative/dir"), "backup_dest and backup_metrics_dir must be absolute paths"),
    (None, dict(GOOD, backup_format="tar"), "backup_format must be one of: custom, directory"),
    (None, dict(GOOD, backup_jobs=0), "backup_jobs a whole number of at least 1 (got 0)"),
    (None, dict(GOOD, backup_max_age="a day"), 'backup_max_age empty or a duration such as 23h or 3600 (got "a day")'),
    (None, dict(GOOD, backup_keep=-1), "backup_keep and backup_keep_days whole numbers, 0 for no rule (got -1, 0)"),
    ("restore", dict(backup_restore_database="appdb"),
     'Refusing to restore. Set backup_restore_database to the database to restore'),
    ("restore", dict(backup_restore_database="postgres", backup_restore_confirm="postgres"),
     'got database="postgres", confirm="postgres"'),
    ("restore", dict(backup_restore_database="appdb", backup_restore_confirm="appdb",
                     backup_restore_writers=[dict(host="nowhere", service="pgbouncer")]),
     "backup_restore_writers must be a list of {host, service} with inventory hosts"),
    ("restore_test", dict(GOOD, backup_restore_test_database="appdb"),
     "backup_restore_test_database must be a plain identifier that is not one of them"),
    ("restore_test", dict(GOOD, backup_restore_jobs=0), "backup_restore_jobs >= 1 (got 0)"),
])
def test_bad_input_fails_before_any_change(tmp_path, tasks_from, extra, expected):
    rc, output = run_entry(tmp_path, extra, tasks_from)
    assert_stopped_in_preflight(rc, output, expected, first_change=ASKS)


@pytest.mark.parametrize("tasks_from, extra", [
    (None, GOOD),
    ("restore", dict(backup_restore_database="appdb", backup_restore_confirm="appdb")),
    ("restore_test", GOOD),
])
def test_good_input_asks_the_postgres_hosts_for_the_primary(tmp_path, tasks_from, extra):
    rc, output = run_entry(tmp_path, extra, tasks_from)
    assert_past_preflight(rc, output, first_change=ASKS)
    # Nobody answers: no primary, and nothing is done.
    assert "no node can be taken as the primary (pg1: unknown, pg2: unknown)" in " ".join(output.split())
    assert "Nothing was changed" in output and "pg_backup" not in output


def test_the_playbooks_take_their_former_variable_names(tmp_path):
    for playbook, extra, expected in [
        ("backup.yml", dict(dbstack_backup_databases=["appdb"], dbstack_backup_keep=""),
         None),
        ("backup.yml", dict(dbstack_backup_databases=["appdb"], dbstack_backup_max_age="soon"),
         'backup_max_age empty or a duration such as 23h or 3600 (got "soon")'),
        ("restore.yml", dict(dbstack_restore_database="appdb", dbstack_restore_confirm="shop"),
         'got database="appdb", confirm="shop"'),
        ("restore_test.yml", dict(dbstack_backup_databases=["appdb"], dbstack_restore_test_database="appdb"),
         "(got appdb)"),
    ]:
        rc, output = run_role_preflight(tmp_path, "dbstack.ha.backup", "postgres", PAIR, extra,
                                        playbook=os.path.join(ROOT, "playbooks", playbook))
        if expected:
            assert_stopped_in_preflight(rc, output, expected, first_change=ASKS)
        else:  # '' meant "no retention by count": mapped to 0, accepted
            assert_past_preflight(rc, output, first_change=ASKS)
            assert "dbstack_backup_keep -> backup_keep" in output


def test_a_secret_under_its_former_name_is_not_shown(tmp_path):
    extra = dict(dbstack_backup_databases=["appdb"], dbstack_backup_dsn="host=db.example password=Dsn-Secret-5",
                 dbstack_backup_password="Backup-Secret-6", backup_format="tar")
    rc, output = run_role_preflight(tmp_path, "dbstack.ha.backup", "postgres", PAIR, extra,
                                    playbook=os.path.join(ROOT, "playbooks", "backup.yml"))
    assert rc == 2 and "backup_format must be one of" in output
    assert "Dsn-Secret-5" not in output and "Backup-Secret-6" not in output


METRICS_PLAY = """
- name: Write metrics like the backup role does
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Write them
      ansible.builtin.include_role:
        name: dbstack.ha.backup
        tasks_from: write_metrics
"""


def write_metrics(tmp_path, prom, samples, metered):
    play = tmp_path / "metrics.yml"
    play.write_text(METRICS_PLAY)
    extra = tmp_path / "metrics.json"
    extra.write_text(json.dumps(dict(
        ansible_python_interpreter=sys.executable, __backup_metrics_path=str(prom), __backup_metered=metered,
        __backup_metrics=[dict(name="dbstack_backup_last_success_timestamp_seconds",
                               help="Unix time of the last successful, verified backup."),
                          dict(name="dbstack_backup_last_size_bytes", help="Size.")],
        __backup_samples=[dict(metric=m, database=d, value=v) for m, d, v in samples])))
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", str(play), "-e", "@%s" % extra],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stdout
    return proc.stdout


def test_metrics_file_format_and_carry_over(tmp_path):
    prom = tmp_path / "node-exporter" / "dbstack_backup.prom"
    ts, size = "dbstack_backup_last_success_timestamp_seconds", "dbstack_backup_last_size_bytes"
    write_metrics(tmp_path, prom, [(ts, "appdb", "1795318123.040"), (ts, 'we"ird', "1795318000.000"),
                                   (size, "appdb", "4966180"), (size, 'we"ird', "10")], ["appdb", 'we"ird'])
    assert stat.S_IMODE(os.stat(str(prom)).st_mode) == 0o644
    assert prom.read_text() == "\n".join([
        "#", "# Ansible managed", "#",
        "# HELP dbstack_backup_last_success_timestamp_seconds Unix time of the last successful, verified backup.",
        "# TYPE dbstack_backup_last_success_timestamp_seconds gauge",
        'dbstack_backup_last_success_timestamp_seconds{database="appdb"} 1795318123.040',
        'dbstack_backup_last_success_timestamp_seconds{database="we\\"ird"} 1795318000.000',
        "# HELP dbstack_backup_last_size_bytes Size.",
        "# TYPE dbstack_backup_last_size_bytes gauge",
        'dbstack_backup_last_size_bytes{database="appdb"} 4966180',
        'dbstack_backup_last_size_bytes{database="we\\"ird"} 10', ""])
    # The next run backs up appdb only (the other failed): its old lines stay, so its age keeps growing.
    output = write_metrics(tmp_path, prom, [(ts, "appdb", "1795400000.000"), (size, "appdb", "5000000")],
                           ["appdb", 'we"ird'])
    text = prom.read_text()
    assert 'dbstack_backup_last_success_timestamp_seconds{database="appdb"} 1795400000.000' in text
    assert 'dbstack_backup_last_success_timestamp_seconds{database="we\\"ird"} 1795318000.000' in text
    assert 'dbstack_backup_last_size_bytes{database="we\\"ird"} 10' in text
    assert "changed=1" in output
    # Same values again: nothing to change.
    output = write_metrics(tmp_path, prom, [(ts, "appdb", "1795400000.000"), (size, "appdb", "5000000")],
                           ["appdb", 'we"ird'])
    assert "changed=0" in output and prom.read_text() == text


ROLE_PLAY = """
- name: The backup role against a database it reaches by DSN (backup_dsn)
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Apply the entry point
      ansible.builtin.include_role:
        name: dbstack.ha.backup
        tasks_from: %s
"""


def run_role_for_real(tmp_path, entry, extra):
    play = tmp_path / ("%s.yml" % entry)
    play.write_text(ROLE_PLAY % entry)
    args = tmp_path / ("%s.json" % entry)
    # The role becomes root to reach an external database; the test already is root, without sudo.
    args.write_text(json.dumps(dict(extra, ansible_python_interpreter=sys.executable, ansible_become=False)))
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", str(play), "-e", "@%s" % args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0"))
    return proc.returncode, proc.stdout


def recap(output):
    return output[output.index("PLAY RECAP"):]


def test_backup_restore_test_and_restore_for_real(tmp_path):
    from ansible_collections.dbstack.ha.tests.integration.servers import lone_primary
    password = "Role-Backup-Pw-9"
    with lone_primary("dbstack-backup-role-", password) as pg:
        pg.psql("CREATE DATABASE shop")
        pg.psql("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 250)",
                dbname="shop")
        dest, metrics = tmp_path / "backups", tmp_path / "node-exporter"
        common = dict(backup_dsn="host=127.0.0.1 port=%d user=postgres sslmode=require" % pg.port,
                      backup_password=password, backup_databases=["shop"], backup_dest=str(dest),
                      backup_metrics_dir=str(metrics))

        rc, output = run_role_for_real(tmp_path, "main", common)
        assert rc == 0, output
        assert password not in output
        text = (metrics / "dbstack_backup.prom").read_text()
        assert 'dbstack_backup_last_success_timestamp_seconds{database="shop"} ' in text
        assert 'dbstack_backup_last_size_bytes{database="shop"} ' in text
        assert len([name for name in os.listdir(str(dest)) if name.endswith(".manifest.json")]) == 1

        # A scheduled run inside max_age takes no backup, verifies the newest, and changes nothing.
        rc, output = run_role_for_real(tmp_path, "main", dict(common, backup_max_age="1h"))
        assert rc == 0 and "changed=0" in recap(output), output
        assert (metrics / "dbstack_backup.prom").read_text() == text

        rc, output = run_role_for_real(tmp_path, "restore_test", common)
        assert rc == 0, output
        tested = (metrics / "dbstack_restore_test.prom").read_text()
        assert 'dbstack_restore_test_last_success_timestamp_seconds{database="shop"} ' in tested
        assert pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'dbstack_restore_test'") == "0"

        rc, output = run_role_for_real(tmp_path, "restore", dict(
            common, backup_restore_database="shop_copy", backup_restore_confirm="shop_copy",
            backup_restore_source="shop"))
        assert rc == 0, output
        assert pg.psql("SELECT count(*) FROM items", dbname="shop_copy") == "250"
        assert password not in output
