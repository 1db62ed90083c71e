# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options of plugins/module_utils/postgres.py
    DOCUMENTATION = r"""
options:
  dsn:
    description:
      - A connection string in any form libpq accepts, as an alternative to the O(login_host) family of options,
        for example a C(DATABASE_URL) taken from an application's environment.
      - 'URI form: C(postgresql://USER:PASSWORD@HOST:PORT/DBNAME?sslmode=verify-full&sslrootcert=/path/ca.crt);
        C(postgres://) and SQLAlchemy driver suffixes such as C(postgresql+psycopg2://) are accepted.'
      - 'Managed services work as they are: RDS, Cloud SQL and Azure URLs with C(?sslmode=require) or C(verify-full),
        several hosts (C(postgresql://h1,h2/db?target_session_attrs=read-write)), and the Cloud SQL socket form
        C(postgresql://USER:PASSWORD@/DBNAME?host=/cloudsql/PROJECT:REGION:INSTANCE).'
      - 'Key/value form: C(host=db1 port=5432 dbname=app user=app sslmode=require).'
      - Any O(login_host), O(login_port), O(login_user), O(login_password), O(login_db), O(ssl_mode), O(ca_cert),
        O(ssl_cert), O(ssl_key) or O(connect_timeout) that is set explicitly overrides the same part of the DSN,
        so the password can come from a vault while the URL comes from the inventory.
      - The whole value is treated as a secret and never shown in output.
    type: str
    aliases: [database_url]
  login_host:
    description:
      - Host name or IP address of the PostgreSQL server.
      - When neither this, O(login_unix_socket) nor O(dsn) sets a host, libpq's default applies (the local socket).
      - Mutually exclusive with O(login_unix_socket).
    type: str
  login_port:
    description:
      - Port of the PostgreSQL server. V(5432) when neither this nor O(dsn) sets it.
    type: int
  login_user:
    description:
      - Role to connect as. V(postgres) when neither this nor O(dsn) sets it.
    type: str
  login_password:
    description:
      - Password of O(login_user). Never logged, never part of an error message.
      - Prefer a vaulted variable; a C(.pgpass) file (mode 0600) of the connecting user also works.
    type: str
  login_db:
    description:
      - Database to connect to. V(postgres) when neither this nor O(dsn) sets it.
    type: str
  login_unix_socket:
    description:
      - Directory of the server's Unix socket, for example C(/var/run/postgresql) or C(/cloudsql/PROJECT:REGION:INSTANCE).
      - Mutually exclusive with O(login_host).
    type: str
  ssl_mode:
    description:
      - How TLS is negotiated, with libpq's meaning for each mode.
      - Use V(verify-full) for anything crossing a network you do not own; V(require) encrypts without checking who answers.
      - V(prefer) when neither this nor O(dsn) sets it.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description:
      - CA certificate(s) that signed the server certificate (libpq C(sslrootcert)).
      - Checked to exist before connecting when O(ssl_mode) is V(verify-ca) or V(verify-full).
    type: path
    aliases: [ssl_rootcert]
  ssl_cert:
    description:
      - Client certificate for certificate authentication; needs O(ssl_key).
    type: path
  ssl_key:
    description:
      - Private key of O(ssl_cert).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the connection before giving up. V(10) when neither this nor O(dsn) sets it.
    type: int
requirements:
  - psycopg >= 3.1 (Debian C(python3-psycopg)) on the host that runs the module.
notes:
  - A connection failure fails the task with the host, port, user, database and sslmode it tried and the server's
    reason; the password is never shown, not even at C(-vvv).
"""
