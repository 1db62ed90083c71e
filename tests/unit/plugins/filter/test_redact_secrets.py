# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.dbstack.ha.plugins.filter.redact_secrets import FilterModule, redact_secrets


def test_text_and_report():
    out = redact_secrets("requirepass cnry-1\nport 6379\n", report=True)
    assert out == {"value": "requirepass ********\nport 6379\n", "redactions": {"redis_directive": 1}}


def test_structures_keep_keys_and_other_values():
    data = {"show": {"databases": [{"name": "appdb", "host": "pg1", "password": "cnry-2"}]},
            "dsn": "postgresql://app:cnry-3@pg1/appdb", "port": 6432}
    assert redact_secrets(data) == {"show": {"databases": [{"name": "appdb", "host": "pg1", "password": "********"}]},
                                    "dsn": "postgresql://app:********@pg1/appdb", "port": 6432}


def test_known_and_pgpass_name():
    assert redact_secrets("said cnry-known-4 twice: cnry-known-4", known=["cnry-known-4"]) == "said ******** twice: ********"
    line = "pg1:5432:appdb:app:cnry-5\n"
    assert redact_secrets(line) == line
    assert redact_secrets(line, name="/root/.pgpass") == "pg1:5432:appdb:app:********\n"


def test_bad_known_is_refused():
    with pytest.raises(AnsibleFilterError, match="known must be a list"):
        redact_secrets("x", known="cnry-6")


def test_registered():
    assert FilterModule().filters()["redact_secrets"] is redact_secrets
