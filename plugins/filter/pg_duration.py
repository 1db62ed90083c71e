# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: pg_duration_ms
short_description: A PostgreSQL time setting in milliseconds
version_added: 0.1.0
description:
  - Converts a PostgreSQL time value such as C(500ms), C(5s), C(2min), C(1h), C('1 d') or a bare number of milliseconds
    into an integer number of milliseconds, so that settings like C(statement_timeout) and C(lock_timeout) can be compared.
  - Fails with a clear message on anything PostgreSQL would not accept.
options:
  _input:
    description: The value, a string or a number (milliseconds).
    type: raw
    required: true
author: dbstack.ha contributors
"""

EXAMPLES = r"""
- name: statement_timeout must be above lock_timeout
  ansible.builtin.assert:
    that: (item.statement_timeout | dbstack.ha.pg_duration_ms) > (item.lock_timeout | dbstack.ha.pg_duration_ms)
"""

RETURN = r"""
_value:
  description: Milliseconds.
  type: int
"""

import re

from ansible.errors import AnsibleFilterError

# PostgreSQL's time units (guc.c), in milliseconds.
UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


def pg_duration_ms(value):
    if isinstance(value, bool):
        raise AnsibleFilterError("pg_duration_ms: %r is not a duration" % (value,))
    if isinstance(value, (int, float)):
        return int(value)
    match = _PATTERN.match(str(value))
    if not match or match.group(2) not in UNITS and match.group(2) != "":
        raise AnsibleFilterError(
            "pg_duration_ms: %r is not a PostgreSQL duration; use a number of milliseconds or a number with one of "
            "the units %s (for example 500ms, 5s, 2min)" % (value, ", ".join(sorted(UNITS))))
    number, unit = float(match.group(1)), match.group(2) or "ms"
    return int(round(number * UNITS[unit]))


class FilterModule(object):
    def filters(self):
        return {"pg_duration_ms": pg_duration_ms}
