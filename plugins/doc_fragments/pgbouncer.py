# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options of plugins/module_utils/pgbouncer.py
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host of PgBouncer's admin console. V(127.0.0.1) when neither this nor O(login_unix_socket) is set.
      - Mutually exclusive with O(login_unix_socket).
    type: str
  login_port:
    description:
      - PgBouncer's listen port.
    type: int
    default: 6432
  login_user:
    description:
      - A user listed in PgBouncer's C(admin_users) (or C(stats_users) for read-only commands).
    type: str
    default: pgbouncer
  login_password:
    description:
      - Password of O(login_user). Never logged, never part of an error message.
    type: str
  login_unix_socket:
    description:
      - Directory of PgBouncer's Unix socket (C(unix_socket_dir)), for example C(/var/run/postgresql).
    type: str
  ssl_mode:
    description:
      - TLS towards PgBouncer (C(client_tls_sslmode) on its side), libpq's modes.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description:
      - CA certificate that signed PgBouncer's client-facing certificate.
    type: path
    aliases: [ssl_rootcert]
  ssl_cert:
    description:
      - Client certificate; needs O(ssl_key).
    type: path
  ssl_key:
    description:
      - Private key of O(ssl_cert).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the connection. V(10) when not set.
    type: int
requirements:
  - psycopg >= 3.1 (Debian C(python3-psycopg)) on the host that runs the module.
notes:
  - The admin console speaks only the simple query protocol and has no transactions; these modules send each
    command on its own in autocommit mode.
"""
