# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared Redis / Sentinel connection handling for dbstack.ha modules.

Works with Redis and Valkey data nodes and with Sentinels (which speak the same
protocol on their own port, with their own optional password).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import traceback

from ansible.module_utils.basic import missing_required_lib

REDIS_IMPORT_ERROR = None
try:
    import redis
    from redis.sentinel import Sentinel

    HAS_REDIS = True
except ImportError:  # pragma: no cover - exercised on hosts without redis-py
    redis = None
    Sentinel = None
    HAS_REDIS = False
    REDIS_IMPORT_ERROR = traceback.format_exc()

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_CONNECT_TIMEOUT = 5.0


class RedisParamsError(ValueError):
    pass


def redis_common_argument_spec():
    """Connection options for one Redis (or Valkey) node, or one Sentinel."""
    return dict(
        login_host=dict(type="str", default=DEFAULT_HOST),
        login_port=dict(type="int", default=DEFAULT_PORT),
        login_user=dict(type="str"),
        login_password=dict(type="str", no_log=True),
        tls=dict(type="bool", default=False),
        validate_certs=dict(type="bool", default=True),
        ca_cert=dict(type="path", aliases=["tls_ca_cert"]),
        client_cert=dict(type="path", aliases=["tls_cert"]),
        client_key=dict(type="path", aliases=["tls_key"], no_log=False),
        connect_timeout=dict(type="float", default=DEFAULT_CONNECT_TIMEOUT),
    )


def sentinel_argument_spec():
    """Options to find the current master through Sentinels."""
    return dict(
        sentinel_hosts=dict(type="list", elements="str"),
        sentinel_password=dict(type="str", no_log=True),
        sentinel_master_name=dict(type="str", default="mymaster"),
    )


def ensure_redis(module):
    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib("redis (redis-py)"), exception=REDIS_IMPORT_ERROR)


def client_kwargs(params):
    """Module params -> keyword arguments for redis.Redis (pure, testable)."""
    port = DEFAULT_PORT if params.get("login_port") is None else int(params["login_port"])
    if not 0 < port < 65536:
        raise RedisParamsError("option login_port must be between 1 and 65535, got %s" % port)
    timeout = DEFAULT_CONNECT_TIMEOUT if params.get("connect_timeout") is None else float(params["connect_timeout"])
    if timeout <= 0:
        raise RedisParamsError("option connect_timeout must be a positive number of seconds")
    kwargs = dict(
        host=params.get("login_host") or DEFAULT_HOST,
        port=port,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        decode_responses=True,
    )
    if params.get("login_user"):
        if not params.get("login_password"):
            raise RedisParamsError("option login_user (an ACL user) needs login_password as well")
        kwargs["username"] = params["login_user"]
    if params.get("login_password"):
        kwargs["password"] = params["login_password"]
    tls_files = [params.get("ca_cert"), params.get("client_cert"), params.get("client_key")]
    if not params.get("tls"):
        if any(tls_files):
            raise RedisParamsError("options ca_cert, client_cert and client_key need tls=true")
        return kwargs
    for option in ("ca_cert", "client_cert", "client_key"):
        path = params.get(option)
        if path and not os.path.isfile(path):
            raise RedisParamsError("option %s points to %s, which does not exist or is not a file" % (option, path))
    if bool(params.get("client_cert")) != bool(params.get("client_key")):
        raise RedisParamsError("options client_cert and client_key go together")
    kwargs["ssl"] = True
    verify = bool(params.get("validate_certs", True))
    kwargs["ssl_cert_reqs"] = "required" if verify else "none"
    kwargs["ssl_check_hostname"] = verify
    if params.get("ca_cert"):
        kwargs["ssl_ca_certs"] = params["ca_cert"]
    if params.get("client_cert"):
        kwargs["ssl_certfile"] = params["client_cert"]
        kwargs["ssl_keyfile"] = params["client_key"]
    return kwargs


def describe(kwargs):
    return "%s:%s%s%s" % (
        kwargs.get("host"), kwargs.get("port"),
        " user=%s" % kwargs["username"] if kwargs.get("username") else "",
        " tls" if kwargs.get("ssl") else "")


def connect(module, params=None, ping=True):
    """A connected redis.Redis client, or fail_json naming the target and the cause."""
    ensure_redis(module)
    params = module.params if params is None else params
    if params.get("login_password"):
        module.no_log_values.add(params["login_password"])
    try:
        kwargs = client_kwargs(params)
    except RedisParamsError as exc:
        module.fail_json(msg=str(exc))
    client = redis.Redis(**kwargs)
    if ping:
        try:
            client.ping()
        except redis.exceptions.AuthenticationError as exc:
            module.fail_json(msg="Redis at %s refused the credentials: %s. Check login_user/login_password." % (describe(kwargs), exc))
        except redis.exceptions.ResponseError as exc:
            # NOAUTH and WRONGPASS surface as ResponseError in some versions
            module.fail_json(msg="Redis at %s answered with an error: %s" % (describe(kwargs), exc))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            module.fail_json(msg="Unable to connect to Redis at %s: %s" % (describe(kwargs), exc))
    return client


def parse_sentinel_hosts(hosts):
    """['h1', 'h2:26380', '[::1]:26379'] -> [(host, port), ...]"""
    result = []
    for entry in hosts or []:
        entry = entry.strip()
        if not entry:
            continue
        if entry.startswith("["):
            host, sep, rest = entry[1:].partition("]")
            port = rest.lstrip(":") or DEFAULT_SENTINEL_PORT
        elif entry.count(":") == 1:
            host, port = entry.split(":")
        else:
            host, port = entry, DEFAULT_SENTINEL_PORT
        try:
            port = int(port)
        except ValueError:
            raise RedisParamsError("sentinel_hosts entry %r: the port must be a number (HOST:PORT)" % entry)
        result.append((host, port))
    if not result:
        raise RedisParamsError("option sentinel_hosts needs at least one HOST[:PORT]")
    return result


def sentinel_master(module, params=None):
    """Ask the Sentinels for the current master: returns (host, port)."""
    ensure_redis(module)
    params = module.params if params is None else params
    for secret in (params.get("login_password"), params.get("sentinel_password")):
        if secret:
            module.no_log_values.add(secret)
    try:
        sentinels = parse_sentinel_hosts(params.get("sentinel_hosts"))
        kwargs = client_kwargs(params)
    except RedisParamsError as exc:
        module.fail_json(msg=str(exc))
    sentinel_kwargs = dict((k, v) for k, v in kwargs.items() if k not in ("host", "port", "username", "password"))
    if params.get("sentinel_password"):
        sentinel_kwargs["password"] = params["sentinel_password"]
    finder = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs,
                      socket_timeout=kwargs["socket_timeout"])
    name = params.get("sentinel_master_name") or "mymaster"
    try:
        return finder.discover_master(name)
    except redis.sentinel.MasterNotFoundError as exc:
        module.fail_json(msg="No Sentinel in %s knows a master named %r (or none answered): %s. "
                             "Check sentinel_hosts, sentinel_master_name and sentinel_password."
                         % (", ".join("%s:%s" % s for s in sentinels), name, exc))


# --- live configuration: compare before CONFIG SET / SENTINEL SET ---------------

_MEMORY_UNITS = (("gb", 1024 ** 3), ("mb", 1024 ** 2), ("kb", 1024), ("g", 1000 ** 3), ("m", 1000 ** 2),
                 ("k", 1000), ("b", 1))
_MEMORY_SETTINGS = frozenset(["maxmemory", "client-query-buffer-limit", "proto-max-bulk-len",
                              "repl-backlog-size", "active-defrag-ignore-bytes", "hash-max-listpack-value"])
SECRET_SETTINGS = frozenset(["requirepass", "masterauth", "auth-pass", "sentinel-pass"])
MASKED = "********"


def to_config_string(value):
    """A desired value as Redis writes it: yes/no for booleans, space-joined lists."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return " ".join(to_config_string(item) for item in value)
    if value is None:
        return ""
    return str(value)


def memory_bytes(text):
    """'1gb' -> 1073741824, '100m' -> 100000000, '0' -> 0; None if it is not a memory size."""
    text = str(text).strip().lower()
    for suffix, factor in _MEMORY_UNITS:
        if text.endswith(suffix) and text[:-len(suffix)].strip().isdigit():
            return int(text[:-len(suffix)].strip()) * factor
    return int(text) if text.isdigit() else None


def normalize_config_value(name, value):
    """Make a desired value comparable with what CONFIG GET returns."""
    text = " ".join(to_config_string(value).split())
    if name in _MEMORY_SETTINGS:
        size = memory_bytes(text)
        if size is not None:
            return str(size)
    lowered = text.lower()
    if lowered in ("true", "false", "on", "off"):
        return "yes" if lowered in ("true", "on") else "no"
    if name not in SECRET_SETTINGS:
        return lowered if lowered in ("yes", "no") else text
    return text


def config_changes(current, desired):
    """{name: (before, after)} for every desired setting whose live value differs.

    current: CONFIG GET results (name -> str, None when Redis does not know it).
    """
    changes = {}
    for name in sorted(desired):
        want = normalize_config_value(name, desired[name])
        have = current.get(name)
        have_norm = None if have is None else normalize_config_value(name, have)
        if have_norm != want:
            changes[name] = (have, want)
    return changes


def mask(settings):
    """Copy of a settings dict with secret values replaced."""
    return dict((k, MASKED if k in SECRET_SETTINGS and v not in (None, "") else v) for k, v in settings.items())


def pairs_to_dict(reply):
    """['name', 'x', 'quorum', '2'] (RESP2 flat list) or a dict -> dict of strings."""
    if isinstance(reply, dict):
        return dict((str(k), v) for k, v in reply.items())
    items = list(reply or [])
    return dict(zip(items[0::2], items[1::2]))


# Settings of `sentinel monitor` that SENTINEL MASTER reports, with the name SENTINEL SET uses.
SENTINEL_MONITOR_SETTINGS = ("quorum", "down-after-milliseconds", "failover-timeout", "parallel-syncs")


def persisted_auth(text, name):
    """auth-pass / auth-user of master NAME as Sentinel wrote them to its config file."""
    found = {}
    for line in (text or "").splitlines():
        words = _config_words(line)
        if len(words) >= 4 and words[0].lower() == "sentinel" and words[2] == name \
                and words[1].lower() in ("auth-pass", "auth-user"):
            found[words[1].lower()] = words[3]
    return found


def _config_words(line):
    """Split one redis.conf / sentinel.conf line the way Redis does (quotes, backslash escapes)."""
    words, word, quote, i = [], None, None, 0
    line = line.strip()
    if line.startswith("#"):
        return []
    while i < len(line):
        char = line[i]
        if quote:
            if char == "\\" and quote == '"' and i + 1 < len(line):
                nxt = line[i + 1]
                word += {"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt)
                i += 2
                continue
            if char == quote:
                quote = None
                words.append(word)
                word = None
            else:
                word += char
        elif char in "\"'":
            quote, word = char, ""
        elif char.isspace():
            if word is not None:
                words.append(word)
                word = None
        else:
            word = (word or "") + char
        i += 1
    if word is not None:
        words.append(word)
    return words


def sentinel_changes(current, desired):
    """{setting: (before, after)} for SENTINEL SET, comparing SENTINEL MASTER output with the wanted values."""
    changes = {}
    for name in sorted(desired):
        want = desired[name]
        if want is None:
            continue
        want = str(want)
        have = current.get(name)
        if have is None or str(have) != want:
            changes[name] = (have, want)
    return changes
