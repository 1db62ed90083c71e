# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and rewriting the [databases] section of pgbouncer.ini, line by line.

Only the entries asked for are rewritten; comments, order, other sections and
other keys of an entry stay as they are. Pure functions, unit tested.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_ENTRY = re.compile(r"^(\s*)([^\s=;#][^=]*?)\s*=\s*(.*?)\s*$")
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.|'')*'|[^\s']+)")


class ConfigError(ValueError):
    pass


def parse_connstr(value):
    """'host=pg1 port=5432 dbname=app' -> [('host', 'pg1'), ('port', '5432'), ('dbname', 'app')]."""
    pairs = []
    pos = 0
    value = value.strip()
    while pos < len(value):
        match = _PAIR.match(value, pos)
        if not match:
            raise ConfigError("cannot parse %r at %r" % (value, value[pos:]))
        raw = match.group(2)
        if raw.startswith("'"):
            raw = raw[1:-1].replace("''", "'").replace("\\'", "'")
        pairs.append((match.group(1), raw))
        pos = match.end()
        while pos < len(value) and value[pos].isspace():
            pos += 1
    return pairs


def format_connstr(pairs):
    out = []
    for key, value in pairs:
        if value == "" or re.search(r"[\s']", value):
            value = "'%s'" % value.replace("'", "''")
        out.append("%s=%s" % (key, value))
    return " ".join(out)


def database_entries(text):
    """{name: (line_index, [(key, value), ...])} for the [databases] section."""
    entries = {}
    section = None
    for index, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if not stripped or stripped[0] in ";#":
            continue
        match = _SECTION.match(line)
        if match:
            section = match.group(1).strip().lower()
            continue
        if section != "databases":
            continue
        entry = _ENTRY.match(line)
        if not entry:
            raise ConfigError("line %d of [databases] is not NAME = CONNSTR: %r" % (index + 1, line))
        entries[entry.group(2).strip()] = (index, parse_connstr(entry.group(3)))
    return entries


def repoint(text, targets):
    """Rewrite the entries named in targets ({name: {host, port}}).

    Returns (new_text, changes) where changes is {name: {before: {...}, after: {...}}}
    for the entries that differ. Unknown names raise ConfigError.
    """
    entries = database_entries(text)
    unknown = sorted(set(targets) - set(entries))
    if unknown:
        raise ConfigError("database(s) %s not found in the [databases] section (it has: %s)"
                          % (", ".join(unknown), ", ".join(sorted(entries)) or "nothing"))
    lines = text.splitlines(True)
    changes = {}
    for name, target in sorted(targets.items()):
        index, pairs = entries[name]
        current = dict(pairs)
        wanted = dict((k, str(v)) for k, v in target.items() if v is not None)
        if all(current.get(k) == v for k, v in wanted.items()):
            continue
        new_pairs = [(k, wanted.get(k, v)) for k, v in pairs]
        new_pairs += [(k, v) for k, v in sorted(wanted.items()) if k not in current]
        ending = "\n" if lines[index].endswith("\n") else ""
        indent = re.match(r"^\s*", lines[index]).group(0)
        lines[index] = "%s%s = %s%s" % (indent, name, format_connstr(new_pairs), ending)
        changes[name] = dict(before=dict((k, current.get(k)) for k in wanted),
                             after=wanted)
    return "".join(lines), changes


def databases_section(text):
    """The [databases] section's lines, for a readable diff."""
    out = []
    section = None
    for line in text.splitlines(True):
        match = _SECTION.match(line)
        if match:
            section = match.group(1).strip().lower()
        if section == "databases":
            out.append(line)
    return "".join(out)
