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


_INCLUDE = re.compile(r"^\s*%include\s+(.+?)\s*$")
_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.|'')*'|[^\s']+)")
MASKED = "********"


def mask_passwords(text):
    """Hide password=... of connection strings (a diff must not carry them)."""
    return _PASSWORD.sub(lambda m: m.group(1) + MASKED, text)


class Unpredictable(ConfigError):
    """The file cannot be read the way PgBouncer will read it (e.g. a relative %include)."""


def parse_ini(text, read_include, depth=0):
    """What PgBouncer reads from a configuration file, as (settings, databases).

    settings: {key (lower case): value} of [pgbouncer]; databases: {name: {key: value}}
    of [databases]. %include files are read with read_include(path) -> text, in place
    and in the current section, as PgBouncer does. A relative %include (resolved
    against PgBouncer's working directory, which the file does not tell) raises
    Unpredictable.
    """
    if depth > 10:
        raise Unpredictable("%include nested more than 10 deep")
    settings, databases = {}, {}
    section = [None]

    def walk(body, level):
        for index, line in enumerate(body.splitlines()):
            stripped = line.strip()
            if not stripped or stripped[0] in ";#":
                continue
            include = _INCLUDE.match(line)
            if include:
                path = include.group(1)
                if not path.startswith("/"):
                    raise Unpredictable("relative %%include %s: PgBouncer resolves it against its working directory" % path)
                if level > 10:
                    raise Unpredictable("%include nested more than 10 deep")
                walk(read_include(path), level + 1)
                continue
            match = _SECTION.match(line)
            if match:
                section[0] = match.group(1).strip().lower()
                continue
            entry = _ENTRY.match(line)
            if not entry:
                raise ConfigError("line %d is not KEY = VALUE: %r" % (index + 1, line))
            key, value = entry.group(2).strip(), entry.group(3)
            if section[0] == "pgbouncer":
                settings[key.lower()] = value
            elif section[0] == "databases":
                databases[key] = dict(parse_connstr(value))

    walk(text, depth)
    return settings, databases


# SHOW DATABASES columns that a RELOAD can change, and where each comes from:
# (column, key of the [databases] entry, global setting it falls back to, value when neither is set).
DATABASE_FIELDS = (
    ("host", "host", None, None),
    ("port", "port", None, "5432"),
    ("database", "dbname", None, None),
    ("force_user", "user", None, None),
    ("pool_size", "pool_size", "default_pool_size", None),
    ("min_pool_size", "min_pool_size", "min_pool_size", None),
    ("reserve_pool", "reserve_pool", "reserve_pool_size", None),
    ("pool_mode", "pool_mode", None, None),
    ("max_connections", "max_db_connections", "max_db_connections", None),
)
# Settings SHOW CONFIG lists that are not read from the file.
NOT_FROM_FILE = ("conffile",)


def same_value(live, wanted):
    """PgBouncer shows settings normalised: 3600.0 as 3600, 0777 as 511."""
    if live == wanted:
        return True
    if live is None or wanted is None:
        return (live or "") == (wanted or "")

    def number(value):
        value = value.strip()
        if re.match(r"^0[0-7]+$", value):
            return int(value, 8)
        return float(value)

    try:
        return number(live) == number(wanted)
    except ValueError:
        return live.strip() == wanted.strip()


def expected_config(settings, config_rows):
    """{key: value} PgBouncer runs after a RELOAD of `settings`, for the keys it shows.

    A key left out of the file goes back to its default on RELOAD; one whose default
    SHOW CONFIG does not tell (set on the command line) is left out.
    """
    expected = {}
    for row in config_rows:
        key = row["key"]
        if key in NOT_FROM_FILE:
            continue
        if key in settings:
            expected[key] = settings[key]
        elif row.get("default") is not None:
            expected[key] = row["default"]
        else:
            expected[key] = row.get("value")
    return expected


def expected_database(name, entry, config):
    row = {}
    for column, key, fallback, default in DATABASE_FIELDS:
        value = entry.get(key)
        if fallback and (value is None or (column == "max_connections" and same_value("0", value))):
            value = config.get(fallback)
        if value is None:
            value = name if column == "database" else default
        row[column] = value
    return row


def live_database_row(row):
    return dict((column, row.get(column)) for column, _key, _fallback, _default in DATABASE_FIELDS)


def database_map(rows):
    """SHOW DATABASES rows -> {name: {column: value}} of the columns a RELOAD can change (admin database left out)."""
    return dict((row["name"], live_database_row(row)) for row in rows if row["name"] != "pgbouncer")


def reload_plan(settings, databases, config_rows, database_rows):
    """What a RELOAD of the file (parsed by parse_ini) would change in what PgBouncer runs now.

    config_rows / database_rows are SHOW CONFIG / SHOW DATABASES rows. Returns a dict:
    config_changes {key: {before, after}} of settings RELOAD applies, restart_required
    {key: {before, after}} of settings that differ but only a restart applies, and
    database_changes {name: {before, after}} (None for an entry added or removed).
    """
    expected = expected_config(settings, config_rows)
    config_changes, restart_required = {}, {}
    for row in config_rows:
        key = row["key"]
        if key not in expected or same_value(row.get("value"), expected[key]):
            continue
        change = dict(before=row.get("value"), after=expected[key])
        if row.get("changeable") == "no":
            restart_required[key] = change
        else:
            config_changes[key] = change
    effective = dict((row["key"], row.get("value")) for row in config_rows)
    effective.update((key, expected[key]) for key in config_changes)
    live = database_map(database_rows)
    wanted = dict((name, expected_database(name, entry, effective))
                  for name, entry in databases.items() if name != "*")
    database_changes = {}
    for name in sorted(set(live) | set(wanted)):
        before, after = live.get(name), wanted.get(name)
        if after is None and "*" in databases:
            continue  # an automatic database of the "*" entry: RELOAD keeps it
        if before is None or after is None or any(not same_value(before[c], after[c]) for c in before):
            database_changes[name] = dict(before=before, after=after)
    return dict(config_changes=config_changes, restart_required=restart_required, database_changes=database_changes)


def render_state(config, databases):
    """({key: value}, {name: row}) as pgbouncer.ini-like text, for a diff."""
    lines = ["[databases]"]
    for name in sorted(databases):
        row = databases[name]
        pairs = [(c, row[c]) for c, _k, _f, _d in DATABASE_FIELDS if row.get(c) is not None]
        lines.append("%s = %s" % (name, format_connstr(pairs)))
    lines += ["", "[pgbouncer]"]
    lines += ["%s = %s" % (key, "" if config[key] is None else config[key]) for key in sorted(config)]
    return "\n".join(lines) + "\n"


def plan_diff(plan, config_rows, database_rows):
    """(before, after) texts of what PgBouncer runs now and would run after the RELOAD in `plan`."""
    config = dict((row["key"], row.get("value")) for row in config_rows
                  if row.get("changeable") != "no" and row["key"] not in NOT_FROM_FILE)
    dbs = database_map(database_rows)
    new_config = dict(config)
    new_config.update((key, change["after"]) for key, change in plan["config_changes"].items())
    new_dbs = dict(dbs)
    for name, change in plan["database_changes"].items():
        if change["after"] is None:
            new_dbs.pop(name, None)
        else:
            new_dbs[name] = change["after"]
    return render_state(config, dbs), render_state(new_config, new_dbs)
