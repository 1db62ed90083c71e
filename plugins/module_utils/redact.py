# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one redaction of dbstack.ha: every form a secret takes on this stack.

``redact_text(text, known=(), name="")`` masks values and keeps keys, so that
the structure stays readable (``requirepass ********``,
``password=********``), and counts what it masked per rule. The same function
backs the ``support_collect`` module (on the host, before anything leaves it)
and the ``redact_secrets`` filter (on the controller), and
``postgres.redact`` for error messages.

Rules (names as the redaction report shows them):

- ``private_key``: a PEM private key block (the whole block goes).
- ``scram_verifier`` / ``md5_verifier``: PostgreSQL password verifiers,
  anywhere (userlist.txt, pg_authid dumps).
- ``redis_acl``: ``>password``, ``<password``, ``#<sha256>`` and
  ``!<sha256>`` in ACL rules (``user NAME ...`` lines, ``ACL SETUSER``).
- ``redis_directive``: ``requirepass``, ``masterauth``,
  ``sentinel auth-pass MASTER``, ``sentinel sentinel-pass`` and their
  ``CONFIG SET`` / ``SENTINEL SET`` forms.
- ``sql_password``: ``PASSWORD '...'`` in SQL (``CREATE`` / ``ALTER ROLE``),
  as logs and ``pg_stat_activity`` show it.
- ``url_password``: ``scheme://user:PASSWORD@host``.
- ``cli_password``: ``--password X``, ``--pass=X``, ``redis-cli -a X``.
- ``keyword``: ``KEY=value``, ``KEY = value``, ``KEY: value``,
  ``"KEY": "value"`` where KEY names a secret (password, passwd, pwd,
  passphrase, secret, token, api key, credentials, ``*_AUTH``): env files,
  systemd ``Environment=`` lines, INI, YAML, JSON, libpq key=value strings.
  Keys naming a file or a setting (``passfile``, ``*_FILE``,
  ``password_encryption``) are kept as they are.
- ``userlist``: the second field of a ``"user" "secret"`` line.
- ``pgpass``: the password field of a ``.pgpass`` line (items whose name
  says pgpass or passfile).
- ``secret_file``: every line of a file named like a secret
  (``.../password``, ``token``, ``secret``, ``*.pass``): its content is the
  secret.
- ``known_value``: a value given in ``known`` (and its URL-encoded form),
  wherever it shows.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover - Python 2
    from urllib import quote  # pylint: disable=ansible-bad-import-from

MASK = "********"

_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY)-----.*?(?:-----END \1-----|\Z)", re.S)
_PRIVATE_KEY_START = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_SCRAM = re.compile(r"SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+")
_MD5 = re.compile(r"\bmd5[0-9a-f]{32}\b")
# An ACL rule line: the ACL file / redis.conf `user NAME ...`, or ACL SETUSER.
_ACL_LINE = re.compile(r"(?im)^(?:\s*user\s+\S+|.*\bACL\s+SETUSER\s+\S+).*$")
_ACL_TOKEN = re.compile(r"(?<=\s)([<>])(?!\*{8}(?:\s|$))(\S+)|(?<=\s)([#!])([0-9a-fA-F]{64})\b")
# A directive at the start of a config line, or its runtime form in a log or on a command line (a word
# "requirepass" in prose is left alone).
_REDIS_DIRECTIVE = re.compile(
    r"(?im)(^\s*(?:requirepass|masterauth|sentinel\s+sentinel-pass)\s+|^\s*sentinel\s+auth-pass\s+\S+\s+"
    r"|\bCONFIG\s+SET\s+(?:requirepass|masterauth)\s+|\bSENTINEL\s+SET\s+\S+\s+auth-pass\s+"
    r"|--(?:requirepass|masterauth)\s+)"
    r"(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s\"']+)")
# The literal may be cut (pg_stat_activity's query is truncated): then it runs to the end of the line.
_SQL_PASSWORD = re.compile(r"(?im)(\bPASSWORD\s+)(E?'(?:[^'\\\n]|''|\\.)*(?:'|$))")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s'\"]*:)([^@\s/'\"]+)(@)")
_CLI_PASSWORD = re.compile(
    r"(?i)((?:^|\s)(?:--[a-z0-9-]*pass(?:word)?|--secret|--token)(?:=|\s+)|\bredis-cli\b[^\n]*?\s-a\s+)"
    r"(\"[^\"]*\"|'[^']*'|[^\s\"']+)")
_SECRET_KEY = (r"[A-Za-z0-9_.-]*(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|credentials?"
               r"|requirepass|masterauth|auth-pass|sentinel-pass)"
               r"[A-Za-z0-9_.-]*|[A-Za-z0-9_.-]*_auth")
# A key that names a file, a path or a setting is not a secret itself.
_NOT_SECRET_KEY = re.compile(
    r"(?i)(?:file|path|dir|directory|_encryption|_type|_query|_user|_users|_name|_length|_policy|_command|_reload)$"
    r"|^password_encryption$")
_KEYWORD = re.compile(
    r"(?i)(?<![A-Za-z0-9_.-])([\"']?)(" + _SECRET_KEY + r")\1(\s*[=:]\s*)"
    r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|''|\\.)*'|[^\s\"',;&}]+)")
_USERLIST = re.compile(r"(?m)^(\s*\"(?:[^\"]|\"\")+\"\s+\")((?:[^\"]|\"\")*)(\".*)$")
_PGPASS_NAME = re.compile(r"(?i)pgpass|passfile")
# A file that holds nothing but a secret (an exporter's password file, a token file): every line goes.
_SECRET_FILE_NAME = re.compile(r"(?i)(?:^|[/._-])(?:password|secret|token|passphrase)s?(?:\.txt)?$|\.pass$")
_SECRET_FILE_LINE = re.compile(r"(?m)^()(?!#)(\S.*)$")
_PGPASS_LINE = re.compile(r"(?m)^((?:(?:[^:\\\n#]|\\.)*:){4})(.+)$")


def _is_mask(value):
    return value.strip("\"'E") == MASK


def _requote(value):
    """The mask, quoted as the value was."""
    if value[:2] == "E'":
        return "E'%s'" % MASK
    if value[:1] in ("'", '"') and value[-1:] == value[:1] and len(value) > 1:
        return value[0] + MASK + value[0]
    return MASK


class Redactor(object):
    """Apply every rule to a text; ``counts`` says what was masked, per rule."""

    def __init__(self, known=()):
        values = set()
        for value in known or ():
            if value and len(str(value)) >= 4:
                values.add(str(value))
                values.add(quote(str(value), safe=""))
        # Longest first, so that a secret holding another is masked whole.
        self.known = sorted((v for v in values if v and v != MASK), key=len, reverse=True)
        self.counts = {}

    def _count(self, rule, number=1):
        if number:
            self.counts[rule] = self.counts.get(rule, 0) + number

    def _sub(self, rule, pattern, text, value_group, keep=None):
        """Mask group value_group of every match (keep: the groups around it)."""
        def replace(match):
            value = match.group(value_group)
            if value is None or _is_mask(value):
                return match.group(0)
            if keep is not None and not keep(match):
                return match.group(0)
            self._count(rule)
            start, end = match.span(value_group)
            offset = match.start(0)
            whole = match.group(0)
            return whole[:start - offset] + _requote(value) + whole[end - offset:]
        return pattern.sub(replace, text)

    def _acl(self, text):
        def line(match):
            def token(tok):
                if tok.group(1):
                    self._count("redis_acl")
                    return tok.group(1) + MASK
                if tok.group(3):
                    self._count("redis_acl")
                    return tok.group(3) + MASK
                return tok.group(0)
            return _ACL_TOKEN.sub(token, match.group(0))
        return _ACL_LINE.sub(line, text)

    def _private_keys(self, text):
        def block(_match):
            self._count("private_key")
            return "[private key removed]"
        return _PRIVATE_KEY.sub(block, text)

    def text(self, text, name=""):
        """The text with every secret masked."""
        if not text:
            return text
        text = self._private_keys(text)
        for value in self.known:
            if value in text:
                self._count("known_value", text.count(value))
                text = text.replace(value, MASK)
        text = self._sub("scram_verifier", _SCRAM, text, 0)
        text = self._sub("md5_verifier", _MD5, text, 0)
        text = self._acl(text)
        text = self._sub("redis_directive", _REDIS_DIRECTIVE, text, 2)
        text = self._sub("sql_password", _SQL_PASSWORD, text, 2)
        text = self._sub("url_password", _URL_PASSWORD, text, 2)
        text = self._sub("cli_password", _CLI_PASSWORD, text, 2)
        text = self._sub("keyword", _KEYWORD, text, 4, keep=lambda m: not _NOT_SECRET_KEY.search(m.group(2)))
        text = self._sub("userlist", _USERLIST, text, 2)
        if _PGPASS_NAME.search(name or ""):
            text = self._sub("pgpass", _PGPASS_LINE, text, 2)
        elif _SECRET_FILE_NAME.search(name or ""):
            text = self._sub("secret_file", _SECRET_FILE_LINE, text, 2)
        return text

    def data(self, value, key=""):
        """Strings inside lists and dicts masked; a dict value under a secret key masked whole."""
        if isinstance(value, dict):
            return dict((k, self.data(v, str(k))) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return [self.data(v, key) for v in value]
        if isinstance(value, str):
            if key and secret_key(key) and value and not _is_mask(value):
                self._count("keyword")
                return MASK
            return self.text(value, key)
        return value


def secret_key(key):
    """Whether a key (a dict key, an env var, a setting) names a secret."""
    return bool(re.match(r"(?i)(?:%s)$" % _SECRET_KEY, key or "")) and not _NOT_SECRET_KEY.search(key)


def has_private_key(text):
    """Whether text holds a PEM private key (such a file is never collected)."""
    return bool(_PRIVATE_KEY_START.search(text or ""))


def redact_text(text, known=(), name=""):
    """(masked text, {rule: count})."""
    redactor = Redactor(known)
    return redactor.text(text, name), redactor.counts


def mask_known(text, secrets):
    """Only the given values masked (error messages that may quote a password)."""
    if not text:
        return text
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
