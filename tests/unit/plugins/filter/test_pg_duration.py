# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.dbstack.ha.plugins.filter.pg_duration import pg_duration_ms


@pytest.mark.parametrize("value, ms", [
    (0, 0), (250, 250), ("250", 250), ("500ms", 500), ("5s", 5000), ("1.5s", 1500), ("2min", 120000),
    ("1h", 3600000), ("1 d", 86400000), (" 30s ", 30000), ("1500us", 2),
])
def test_durations(value, ms):
    assert pg_duration_ms(value) == ms


@pytest.mark.parametrize("value", ["5 seconds", "abc", "-1s", "5m", True, "", "1e3"])
def test_rejected(value):
    with pytest.raises(AnsibleFilterError, match="not a"):
        pg_duration_ms(value)
