# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dbstack.ha.plugins.module_utils.pgbouncer_config import (
    ConfigError,
    database_entries,
    databases_section,
    format_connstr,
    parse_connstr,
    repoint,
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
