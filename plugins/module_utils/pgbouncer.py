# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared access to the PgBouncer admin console for dbstack.ha modules.

The admin console is the virtual database ``pgbouncer``. It only understands
the simple query protocol and has no transactions, so every command is sent
with libpq's ``PQexec`` on an autocommit connection, never with bind
parameters or prepared statements.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    ConnectionParamsError,
    build_conninfo,
    connect,
    libpq_connection_spec,
)

ADMIN_DB = "pgbouncer"
DEFAULT_PORT = 6432
DEFAULT_USER = "pgbouncer"

# Admin console commands never need quoting beyond a bare database name.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def pgbouncer_common_argument_spec():
    """Connection options for the admin console (same names as PostgreSQL's)."""
    spec = libpq_connection_spec()
    spec.update(
        login_port=dict(type="int", default=DEFAULT_PORT),
        login_user=dict(type="str", default=DEFAULT_USER),
    )
    return spec


def admin_params(params):
    """Module params -> params for postgres.build_conninfo, dbname forced."""
    merged = dict(params)
    merged["dsn"] = None
    merged["login_db"] = ADMIN_DB
    if not merged.get("login_host") and not merged.get("login_unix_socket"):
        merged["login_host"] = "127.0.0.1"
    return merged


def admin_conninfo(params):
    info = build_conninfo(admin_params(params))
    info["dbname"] = ADMIN_DB
    return info


class AdminConsole(object):
    """A thin wrapper over one admin-console connection."""

    def __init__(self, module, params=None):
        params = module.params if params is None else params
        self.module = module
        self.conn, self.target = connect(module, admin_params(params), autocommit=True, dbname=ADMIN_DB,
                                         service="the PgBouncer admin console")

    def command(self, sql):
        """Run one admin command with the simple query protocol.

        Returns a list of dicts (empty for commands without a result set).
        """
        pgconn = self.conn.pgconn
        return result_rows(pgconn.exec_(sql.encode("utf-8")), sql, pgconn)

    def show(self, what):
        """SHOW POOLS / CONFIG / DATABASES / VERSION ... as a list of dicts."""
        if not _SAFE_NAME.match(what):
            raise AdminCommandError("not a SHOW target: %r" % what)
        return self.command("SHOW %s" % what.upper())

    def version(self):
        rows = self.show("version")
        return rows[0].get("version") if rows else None

    def close(self):
        try:
            self.conn.close()
        except Exception:  # pylint: disable=broad-except
            pass


class AdminCommandError(Exception):
    pass


def result_rows(result, sql, pgconn=None):
    """One admin-console result as a list of dicts; AdminCommandError if PgBouncer refused it."""
    status = result.status
    # psycopg.pq.ExecStatus: COMMAND_OK=1, TUPLES_OK=2
    if status not in (1, 2):
        message = result.error_message or (pgconn.error_message if pgconn is not None else None) or b""
        raise AdminCommandError("PgBouncer rejected %r: %s" % (sql, message.decode("utf-8", "replace").strip()))
    rows = []
    if status == 2:
        names = [result.fname(i).decode("utf-8") for i in range(result.nfields)]
        for r in range(result.ntuples):
            row = {}
            for c, name in enumerate(names):
                value = result.get_value(r, c)
                row[name] = None if value is None else value.decode("utf-8", "replace")
            rows.append(row)
    return rows


def quote_db_name(name):
    """Validate a database name for PAUSE/RESUME/RECONNECT commands."""
    if not name or not _SAFE_NAME.match(name):
        raise ConnectionParamsError(
            "database name %r cannot be used on the PgBouncer admin console: use letters, digits, '_', '.' or '-'" % name
        )
    return name
