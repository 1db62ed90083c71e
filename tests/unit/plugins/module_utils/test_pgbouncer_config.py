# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dbstack.ha.plugins.module_utils.pgbouncer_config import (
    ConfigError,
    database_entries,
    databases_section,
    format_connstr,
    mask_passwords,
    parse_connstr,
    parse_ini,
    plan_diff,
    reload_plan,
    repoint,
    same_value,
    Unpredictable,
)

INI = """;; managed
[databases]
; the app
appdb = host=pg1 port=5432 dbname=appdb pool_size=50
reports = host=pg1 dbname=appdb auth_user='rep user'
* = host=fallback

[pgbouncer]
listen_port = 6432
host = not-a-database
"""


def test_parse_and_format_connstr():
    pairs = parse_connstr("host=pg1 port=5432  dbname=app auth_user='a b' password='it''s'")
    assert pairs == [("host", "pg1"), ("port", "5432"), ("dbname", "app"), ("auth_user", "a b"), ("password", "it's")]
    assert format_connstr(pairs) == "host=pg1 port=5432 dbname=app auth_user='a b' password='it''s'"


def test_parse_connstr_rejects_garbage():
    with pytest.raises(ConfigError):
        parse_connstr("host=pg1 nonsense")


def test_entries_only_from_databases_section():
    entries = database_entries(INI)
    assert sorted(entries) == ["*", "appdb", "reports"]
    assert dict(entries["appdb"][1])["pool_size"] == "50"


def test_repoint_rewrites_only_the_named_entry():
    text, changes = repoint(INI, {"appdb": {"host": "pg2", "port": 5433}})
    assert changes == {"appdb": {"before": {"host": "pg1", "port": "5432"}, "after": {"host": "pg2", "port": "5433"}}}
    assert "appdb = host=pg2 port=5433 dbname=appdb pool_size=50\n" in text
    assert text.replace("host=pg2 port=5433", "host=pg1 port=5432") == INI


def test_repoint_adds_a_missing_port_and_keeps_quotes():
    text, changes = repoint(INI, {"reports": {"host": "pg2", "port": 5432}})
    assert "reports = host=pg2 dbname=appdb auth_user='rep user' port=5432\n" in text
    assert changes["reports"]["before"] == {"host": "pg1", "port": None}


def test_repoint_to_the_same_place_changes_nothing():
    text, changes = repoint(INI, {"appdb": {"host": "pg1", "port": 5432}, "reports": {"host": "pg1", "port": None}})
    assert changes == {}
    assert text == INI


def test_unknown_database_is_a_clear_error():
    with pytest.raises(ConfigError, match="database\\(s\\) nope not found in the \\[databases\\] section"):
        repoint(INI, {"nope": {"host": "pg2"}})


def test_databases_section_for_diff():
    section = databases_section(INI)
    assert section.startswith("[databases]\n")
    assert "listen_port" not in section


def config_row(key, value, default, changeable="yes"):
    return dict(key=key, value=value, default=default, changeable=changeable)


# What PgBouncer 1.18 showed for a file with default_pool_size = 5 (SHOW CONFIG / SHOW DATABASES, trimmed).
LIVE_CONFIG = [
    config_row("conffile", "/etc/pgbouncer/pgbouncer.ini", None),
    config_row("default_pool_size", "5", "20"),
    config_row("min_pool_size", "0", "0"),
    config_row("reserve_pool_size", "0", "0"),
    config_row("max_db_connections", "0", "0"),
    config_row("pool_mode", "transaction", "session"),
    config_row("server_lifetime", "3600", "3600"),
    config_row("query_wait_timeout", "0.5", "120"),
    config_row("listen_port", "6432", "6432", "no"),
    config_row("unix_socket_mode", "511", "0777", "no"),
    config_row("verbose", "0", None),
]
LIVE_DATABASES = [
    dict(name="appdb", host="pg1", port="5432", database="appdb", force_user=None, pool_size="5", min_pool_size="0",
         reserve_pool="0", pool_mode=None, max_connections="0", current_connections="3", paused="0", disabled="0"),
    dict(name="pgbouncer", host=None, port="6432", database="pgbouncer", force_user="pgbouncer", pool_size="2",
         min_pool_size="0", reserve_pool="0", pool_mode="statement", max_connections="0"),
]
FILE = """[databases]
appdb = host=pg1 dbname=appdb password='secret pw'

[pgbouncer]
%include /etc/pgbouncer/listen.ini
Default_Pool_Size = 5
pool_mode = transaction
server_lifetime = 3600.0
query_wait_timeout = 0.5
"""
INCLUDES = {"/etc/pgbouncer/listen.ini": "listen_port = 6432\nunix_socket_mode = 0777\n"}


def plan_for(text, config=None, databases=None):
    settings, dbs = parse_ini(text, INCLUDES.__getitem__)
    return reload_plan(settings, dbs, config or LIVE_CONFIG, databases or LIVE_DATABASES)


def test_parse_ini_reads_includes_in_place_and_lowercases_keys():
    settings, dbs = parse_ini(FILE, INCLUDES.__getitem__)
    assert settings["listen_port"] == "6432" and settings["default_pool_size"] == "5"
    assert dbs == {"appdb": {"host": "pg1", "dbname": "appdb", "password": "secret pw"}}


def test_parse_ini_relative_include_is_unpredictable():
    with pytest.raises(Unpredictable):
        parse_ini("[pgbouncer]\n%include listen.ini\n", INCLUDES.__getitem__)


def test_parse_ini_include_loop_is_refused():
    with pytest.raises(Unpredictable):
        parse_ini("[pgbouncer]\n%include /a\n", {"/a": "%include /a\n"}.__getitem__)


def test_same_value_as_pgbouncer_shows_it():
    assert same_value("3600", "3600.0") and same_value("511", "0777") and same_value("0.5", "0.50")
    assert same_value(None, "") and not same_value("5", "7") and not same_value("session", "transaction")


def test_reload_of_the_running_file_changes_nothing():
    assert plan_for(FILE) == dict(config_changes={}, restart_required={}, database_changes={})


def test_reload_plan_setting_changed_and_its_effect_on_databases():
    plan = plan_for(FILE.replace("Default_Pool_Size = 5", "default_pool_size = 7"))
    assert plan["config_changes"] == {"default_pool_size": dict(before="5", after="7")}
    appdb = plan["database_changes"]["appdb"]
    assert (appdb["before"]["pool_size"], appdb["after"]["pool_size"]) == ("5", "7")
    assert "password" not in appdb["after"]


def test_reload_plan_removed_setting_goes_back_to_its_default():
    plan = plan_for(FILE.replace("query_wait_timeout = 0.5\n", ""))
    assert plan["config_changes"] == {"query_wait_timeout": dict(before="0.5", after="120")}


def test_reload_plan_restart_only_settings_are_not_reload_changes():
    plan = plan_for(FILE.replace("%include /etc/pgbouncer/listen.ini", "listen_port = 6543"))
    assert plan["config_changes"] == {}
    assert plan["restart_required"] == {"listen_port": dict(before="6432", after="6543")}


def test_reload_plan_databases_added_removed_and_repointed():
    text = FILE.replace("appdb = host=pg1 dbname=appdb", "appdb = host=pg2 dbname=appdb port=5433 pool_size=9")
    text = text.replace("[pgbouncer]", "reports = dbname=appdb user=rep\n\n[pgbouncer]")
    plan = plan_for(text)
    assert plan["database_changes"]["appdb"]["after"] == dict(
        host="pg2", port="5433", database="appdb", force_user=None, pool_size="9", min_pool_size="0",
        reserve_pool="0", pool_mode=None, max_connections="0")
    assert plan["database_changes"]["reports"] == dict(before=None, after=dict(
        host=None, port="5432", database="appdb", force_user="rep", pool_size="5", min_pool_size="0",
        reserve_pool="0", pool_mode=None, max_connections="0"))
    removed = plan_for(FILE.replace("appdb = host=pg1 dbname=appdb password='secret pw'", ""))
    assert removed["database_changes"]["appdb"]["after"] is None


def test_reload_plan_keeps_automatic_databases_of_the_fallback_entry():
    plan = plan_for(FILE.replace("appdb = host=pg1 dbname=appdb password='secret pw'", "* = host=pg1"))
    assert plan["database_changes"] == {}


def test_reload_plan_global_max_db_connections_applies_to_databases():
    plan = plan_for(FILE + "max_db_connections = 3\n")
    assert plan["database_changes"]["appdb"]["after"]["max_connections"] == "3"


def test_plan_diff_shows_before_and_after_without_secrets():
    plan = plan_for(FILE.replace("Default_Pool_Size = 5", "default_pool_size = 7"))
    before, after = plan_diff(plan, LIVE_CONFIG, LIVE_DATABASES)
    assert "default_pool_size = 5" in before and "default_pool_size = 7" in after
    assert "appdb = host=pg1 port=5432 database=appdb pool_size=7" in after
    assert "listen_port" not in after and "conffile" not in after  # a RELOAD does not change them
    assert "secret" not in before + after and "pgbouncer =" not in after


def test_mask_passwords():
    assert mask_passwords("appdb = host=pg1 password='a b' user=x\nb = password=pw\n") == \
        "appdb = host=pg1 password=******** user=x\nb = password=********\n"
