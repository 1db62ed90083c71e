# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared PostgreSQL connection handling for dbstack.ha modules (psycopg 3).

Every module that talks to PostgreSQL (or to the PgBouncer admin console, which
speaks the same wire protocol) builds its connection here, so option names,
defaults, TLS handling and error messages are the same everywhere.

Options can come from discrete ``login_*`` options, from a ``dsn`` (any
DATABASE_URL form libpq accepts), or both: explicitly set options override the
matching part of the DSN, so an operator can keep a password-less URL in the
inventory and the password in a vault.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import socket
import threading
import time
import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.dbstack.ha.plugins.module_utils.redact import mask_known

PSYCOPG_IMPORT_ERROR = None
try:
    import psycopg
    from psycopg import conninfo as pg_conninfo

    HAS_PSYCOPG = True
except ImportError:  # pragma: no cover - exercised on hosts without psycopg
    psycopg = None
    pg_conninfo = None
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# Defaults applied when neither an option nor the DSN sets a value.
DEFAULT_PORT = 5432
DEFAULT_USER = "postgres"
DEFAULT_DB = "postgres"
DEFAULT_SSL_MODE = "prefer"
DEFAULT_CONNECT_TIMEOUT = 10

# SQLAlchemy / app-framework URLs carry a driver suffix libpq does not know:
# postgresql+psycopg2://, postgresql+asyncpg://, postgres+psycopg://
_DRIVER_SUFFIX = re.compile(r"^(postgres(?:ql)?)\+[A-Za-z0-9_]+://")
_URI_PASSWORD = re.compile(r"^[A-Za-z0-9+.-]+://[^:@/?#]*:([^@/?#]*)@")
_KV_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")

# option name -> libpq keyword
_OPTION_KEYWORDS = (
    ("login_port", "port"),
    ("login_user", "user"),
    ("login_password", "password"),
    ("login_db", "dbname"),
    ("ssl_mode", "sslmode"),
    ("ca_cert", "sslrootcert"),
    ("ssl_cert", "sslcert"),
    ("ssl_key", "sslkey"),
    ("connect_timeout", "connect_timeout"),
)


class ConnectionParamsError(ValueError):
    """Raised for option combinations that cannot produce a connection."""


def postgres_common_argument_spec():
    """Connection options shared by every PostgreSQL module.

    Defaults are ``None`` on purpose: the documented defaults are applied in
    :func:`build_conninfo` only when the DSN does not set the value either.
    """
    spec = libpq_connection_spec()
    spec.update(
        login_port=dict(type="int"),
        login_user=dict(type="str"),
        login_db=dict(type="str"),
        dsn=dict(type="str", no_log=True, aliases=["database_url"]),
    )
    return spec


def libpq_connection_spec():
    """Options shared by everything reached over libpq (PostgreSQL, PgBouncer)."""
    return dict(
        login_host=dict(type="str"),
        login_password=dict(type="str", no_log=True),
        login_unix_socket=dict(type="str"),
        ssl_mode=dict(type="str", choices=list(SSL_MODES)),
        ca_cert=dict(type="path", aliases=["ssl_rootcert"]),
        ssl_cert=dict(type="path"),
        ssl_key=dict(type="path", no_log=False),
        connect_timeout=dict(type="int"),
    )


def postgres_mutually_exclusive():
    return [["login_host", "login_unix_socket"]]


def ensure_psycopg(module):
    """Fail with the standard Ansible message when psycopg 3 is missing."""
    if not HAS_PSYCOPG:
        module.fail_json(
            msg=missing_required_lib("psycopg (version 3)", url="https://www.psycopg.org/psycopg3/"),
            exception=PSYCOPG_IMPORT_ERROR,
        )


def dsn_password(dsn):
    """Best-effort extraction of the password inside a DSN, for masking only."""
    if not dsn:
        return None
    match = _URI_PASSWORD.match(dsn.strip())
    if match and match.group(1):
        return match.group(1)
    match = _KV_PASSWORD.search(dsn)
    if match:
        return match.group(1).strip("'")
    return None


def redact(text, secrets):
    """Replace every given secret in text (module_utils/redact.py's mask_known)."""
    return mask_known(text, secrets)


def parse_dsn(dsn):
    """Parse a DATABASE_URL (URI or key=value form) into libpq keywords.

    Uses libpq's own parser, so every form libpq accepts works: a local or
    remote host, IPv6 literals, several hosts, percent-encoded passwords,
    ``?sslmode=verify-full&sslrootcert=...`` and the Cloud SQL socket form
    ``postgresql://user:pw@/db?host=/cloudsql/PROJECT:REGION:INSTANCE``.
    A SQLAlchemy driver suffix (``postgresql+psycopg2://``) is dropped.
    """
    if not HAS_PSYCOPG:
        raise ConnectionParamsError("psycopg (version 3) is required to parse the dsn option")
    cleaned = _DRIVER_SUFFIX.sub(r"\1://", dsn.strip())
    try:
        parsed = pg_conninfo.conninfo_to_dict(cleaned)
    except psycopg.ProgrammingError as exc:
        secrets = [dsn_password(dsn)]
        raise ConnectionParamsError(
            "option dsn is not a valid PostgreSQL connection string (%s). Use the URI form "
            "postgresql://USER:PASSWORD@HOST:PORT/DBNAME?sslmode=MODE or key=value pairs "
            "such as 'host=HOST port=PORT dbname=DBNAME'." % redact(str(exc).strip(), secrets)
        )
    return dict((k, v) for k, v in parsed.items() if v not in (None, ""))


def build_conninfo(params):
    """Merge the DSN, explicit options and defaults into libpq keywords.

    Precedence: explicit option > DSN > documented default.
    Raises ConnectionParamsError for unusable combinations.
    """
    info = parse_dsn(params["dsn"]) if params.get("dsn") else {}

    host = params.get("login_host")
    socket_dir = params.get("login_unix_socket")
    if host and socket_dir:
        raise ConnectionParamsError(
            "options login_host and login_unix_socket are mutually exclusive: "
            "give login_host for TCP or login_unix_socket (a directory) for a local socket"
        )
    if socket_dir:
        info["host"] = socket_dir
        info.pop("hostaddr", None)
    elif host:
        info["host"] = host
        info.pop("hostaddr", None)

    for option, keyword in _OPTION_KEYWORDS:
        value = params.get(option)
        if value is not None and value != "":
            info[keyword] = value

    info.setdefault("port", DEFAULT_PORT)
    info.setdefault("user", DEFAULT_USER)
    info.setdefault("dbname", DEFAULT_DB)
    info.setdefault("sslmode", DEFAULT_SSL_MODE)
    info.setdefault("connect_timeout", DEFAULT_CONNECT_TIMEOUT)

    try:
        port = int(info["port"]) if "," not in str(info["port"]) else info["port"]
    except (TypeError, ValueError):
        raise ConnectionParamsError("option login_port (or the dsn port) must be a number, got %r" % info["port"])
    if isinstance(port, int) and not 0 < port < 65536:
        raise ConnectionParamsError("option login_port must be between 1 and 65535, got %d" % port)
    info["port"] = port

    if info["sslmode"] not in SSL_MODES:
        raise ConnectionParamsError(
            "sslmode %r is not valid; use one of: %s" % (info["sslmode"], ", ".join(SSL_MODES))
        )
    if info["sslmode"] in ("verify-ca", "verify-full") and info.get("sslrootcert") not in (None, "system"):
        if not os.path.isfile(info["sslrootcert"]):
            raise ConnectionParamsError(
                "option ca_cert points to %s, which does not exist or is not a file; sslmode=%s "
                "needs the CA certificate that signed the server certificate" % (info["sslrootcert"], info["sslmode"])
            )
    for option, keyword in (("ssl_cert", "sslcert"), ("ssl_key", "sslkey")):
        if info.get(keyword) and not os.path.isfile(info[keyword]):
            raise ConnectionParamsError("option %s points to %s, which does not exist or is not a file" % (option, info[keyword]))
    if bool(info.get("sslcert")) != bool(info.get("sslkey")):
        raise ConnectionParamsError("options ssl_cert and ssl_key go together: give both for client certificate authentication")
    return info


class ResolveError(Exception):
    """A host name that did not resolve (or not in time)."""


def _is_address(host):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except (OSError, ValueError):
            continue
    return False


def resolve_host(host, port, limit, retry_after=1.0, lookup=None):
    """The addresses of a host name (in the resolver's order), within limit seconds, for libpq's hostaddr.

    libpq's connect_timeout does not cover the name lookup: a resolver that does not answer (a DNS server gone
    with the failed site, podman's resolver while a container stops) holds getaddrinfo for its own timeout (5 s,
    twice, by default). Each lookup runs in a thread; while none has answered, another is started every
    retry_after seconds (a lookup that hit a stalled moment is overtaken by a later one), and the first answer
    wins. Returns None for an address, a socket directory or a list of hosts (nothing to resolve). Raises
    ResolveError when the name does not resolve, or when no lookup answered within limit seconds.
    """
    if not host or host.startswith("/") or "," in host or _is_address(host):
        return None
    lookup = lookup or socket.getaddrinfo
    answers = []
    answered = threading.Event()

    def attempt():
        try:
            infos = lookup(host, port, 0, socket.SOCK_STREAM)
            addresses = []
            for info in infos:
                if info[4][0] not in addresses:
                    addresses.append(info[4][0])
            answers.append(("ok", addresses) if addresses else ("error", "no address"))
        except Exception as exc:  # pylint: disable=broad-except
            # gaierror, UnicodeError for a malformed name ...: whatever it is, the caller gets it as the answer.
            answers.append(("error", str(exc) or exc.__class__.__name__))
        answered.set()

    deadline = time.monotonic() + limit
    while True:
        threading.Thread(target=attempt, daemon=True).start()
        remaining = deadline - time.monotonic()
        if answered.wait(max(0.0, min(retry_after, remaining))):
            break
        if time.monotonic() >= deadline:
            raise ResolveError("%s: the name did not resolve within %s s" % (host, limit))
    kind, value = answers[0]
    if kind == "error":
        raise ResolveError("%s: the name does not resolve (%s)" % (host, value))
    return value


def describe_target(info):
    """A one-line, password-free description of where we connect."""
    host = info.get("host") or info.get("hostaddr") or "(default socket)"
    return "host=%s port=%s user=%s dbname=%s sslmode=%s" % (
        host, info.get("port"), info.get("user"), info.get("dbname"), info.get("sslmode"))


def secrets_of(params, info=None):
    """Every secret value that must never appear in output."""
    secrets = [params.get("login_password"), dsn_password(params.get("dsn"))]
    if info:
        secrets.append(info.get("password"))
    return [s for s in secrets if s]


def connect(module, params=None, autocommit=True, service="PostgreSQL", **overrides):
    """Connect or fail_json with the target (never the password) and the cause.

    ``overrides`` replace libpq keywords after the merge (e.g. ``dbname``).
    Returns (connection, conninfo-without-password).
    """
    ensure_psycopg(module)
    params = module.params if params is None else params
    for secret in secrets_of(params):
        module.no_log_values.add(secret)
    try:
        info = build_conninfo(params)
    except ConnectionParamsError as exc:
        module.fail_json(msg=redact(str(exc), secrets_of(params)))
    info.update(overrides)
    for secret in secrets_of(params, info):
        module.no_log_values.add(secret)
    try:
        conn = psycopg.connect(autocommit=autocommit, **info)
    except psycopg.Error as exc:
        cause = redact(str(exc).strip(), secrets_of(params, info))
        module.fail_json(msg="Unable to connect to %s (%s): %s" % (service, describe_target(info), cause))
    public = dict((k, v) for k, v in info.items() if k != "password")
    return conn, public


def server_version(conn):
    """Server version as an int, e.g. 150008 for 15.8."""
    return conn.info.server_version
