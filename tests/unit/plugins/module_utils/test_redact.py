# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

import pytest

from ansible_collections.dbstack.ha.plugins.module_utils.redact import (
    MASK,
    Redactor,
    has_private_key,
    mask_known,
    redact_text,
    secret_key,
)

SCRAM = ("SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyMTI=:"
         "YmF6YmF6YmF6YmF6YmF6YmF6YmF6YmF6YmF6YmF6MTI=")
HEX = hashlib.sha256(b"canary-acl-hash").hexdigest()
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nabc\n-----END RSA PRIVATE KEY-----"

# (the text, the secret that must go, what must stay, the rule that masks it)
CASES = [
    ("DB_PASSWORD=cnry-env-1\n", "cnry-env-1", "DB_PASSWORD=" + MASK, "keyword"),
    ('export API_TOKEN="cnry-env-2"\n', "cnry-env-2", 'API_TOKEN="%s"' % MASK, "keyword"),
    ("REDISCLI_AUTH=cnry-env-3\n", "cnry-env-3", "REDISCLI_AUTH=" + MASK, "keyword"),
    ("auth_password = cnry-ini-4\n", "cnry-ini-4", "auth_password = " + MASK, "keyword"),
    ("password: cnry-yaml-5\n", "cnry-yaml-5", "password: " + MASK, "keyword"),
    ('{"user": "app", "password": "cnry-json-6"}', "cnry-json-6", '"password": "%s"' % MASK, "keyword"),
    ("primary_conninfo = 'host=pg1 user=replicator password=cnry-kv-7 application_name=pg2'\n", "cnry-kv-7",
     "password=%s application_name=pg2" % MASK, "keyword"),
    ("appdb = host=pg1 port=5432 password='cnry kv 8' pool_size=20\n", "cnry kv 8", "password='%s'" % MASK,
     "keyword"),
    ('Environment="PGPASSWORD=cnry-sd-9" "OTHER=1"\n', "cnry-sd-9", '"PGPASSWORD=%s"' % MASK, "keyword"),
    ("Environment=REDIS_PASSWORD=cnry-sd-10\n", "cnry-sd-10", "REDIS_PASSWORD=" + MASK, "keyword"),
    ("DATA_SOURCE_NAME=postgresql://exporter:cnry-url-11@pg1:5432/postgres?sslmode=require\n", "cnry-url-11",
     "postgresql://exporter:%s@pg1" % MASK, "url_password"),
    ("REDIS_URL=redis://default:cnry-url-12@redis1:6379/0\n", "cnry-url-12", "redis://default:%s@" % MASK,
     "url_password"),
    ("requirepass cnry-redis-13\n", "cnry-redis-13", "requirepass " + MASK, "redis_directive"),
    ('masterauth "cnry-redis-14"\n', "cnry-redis-14", 'masterauth "%s"' % MASK, "redis_directive"),
    ("sentinel auth-pass dbstack cnry-sent-15\n", "cnry-sent-15", "sentinel auth-pass dbstack " + MASK,
     "redis_directive"),
    ("sentinel sentinel-pass cnry-sent-16\n", "cnry-sent-16", "sentinel sentinel-pass " + MASK, "redis_directive"),
    ("1:M 01 Dec 10:00:00 * CONFIG SET requirepass cnry-redis-17\n", "cnry-redis-17", "requirepass " + MASK,
     "redis_directive"),
    ('{"requirepass": "cnry-redis-17b"}', "cnry-redis-17b", '"requirepass": "%s"' % MASK, "keyword"),
    ("ExecStart=/usr/bin/redis-server --requirepass cnry-redis-17c --port 6379\n", "cnry-redis-17c",
     "--requirepass %s --port" % MASK, "redis_directive"),
    ("SENTINEL SET dbstack auth-pass cnry-sent-18\n", "cnry-sent-18", "SENTINEL SET dbstack auth-pass " + MASK,
     "redis_directive"),
    ("user default on >cnry-acl-19 ~* &* +@all\n", "cnry-acl-19", "user default on >%s ~* &* +@all" % MASK,
     "redis_acl"),
    ("user app on #%s ~app:* +@all\n" % HEX, HEX, "user app on #%s ~app:*" % MASK, "redis_acl"),
    ("ACL SETUSER app on >cnry-acl-20 <cnry-acl-21\n", "cnry-acl-2", "ACL SETUSER app on >%s <%s" % (MASK, MASK),
     "redis_acl"),
    ('"app" "%s"\n' % SCRAM, SCRAM, '"app" "%s"' % MASK, "scram_verifier"),
    ('"pgbouncer_admin" "cnry-plain-22"\n', "cnry-plain-22", '"pgbouncer_admin" "%s"' % MASK, "userlist"),
    ('"old" "md5%s"\n' % ("a" * 32), "md5" + "a" * 32, '"old" "%s"' % MASK, "md5_verifier"),
    ("2026-12-01 10:00:00 UTC LOG:  statement: ALTER ROLE app PASSWORD 'cnry-sql-23';\n", "cnry-sql-23",
     "ALTER ROLE app PASSWORD '%s'" % MASK, "sql_password"),
    ("CREATE ROLE x LOGIN ENCRYPTED PASSWORD 'it''s-cnry-24'", "s-cnry-24", "ENCRYPTED PASSWORD '%s'" % MASK,
     "sql_password"),
    ("ExecStart=/usr/bin/redis-cli -h redis1 -a cnry-cli-25 ping\n", "cnry-cli-25", "-a %s ping" % MASK,
     "cli_password"),
    ("tool --password=cnry-cli-26 --verbose\n", "cnry-cli-26", "--password=%s --verbose" % MASK, "cli_password"),
    (KEY + "\nafter\n", "MIIEpAIBAAKCAQEA7", "[private key removed]\nafter", "private_key"),
]


@pytest.mark.parametrize("text,secret,kept,rule", CASES, ids=[c[3] + "-" + str(i) for i, c in enumerate(CASES)])
def test_every_form_masked_key_kept(text, secret, kept, rule):
    out, counts = redact_text(text)
    assert secret not in out
    assert kept in out
    assert counts.get(rule), counts


def test_pgpass_only_in_files_named_so():
    text = "# host:port:db:user:password\npg1:5432:replication:replicator:cnry:pg-27\n*:*:*:app:cnry-28\n"
    out, counts = redact_text(text, name="/var/lib/postgresql/.dbstack_replication.pgpass")
    assert "cnry" not in out
    assert "pg1:5432:replication:replicator:" + MASK in out
    assert "*:*:*:app:" + MASK in out
    assert "# host:port:db:user:password" in out
    assert counts == {"pgpass": 2}
    # A log line with four colons is not a pgpass line.
    log = "12:00:01 a:b:c:d:e\n"
    assert redact_text(log, name="/var/log/postgresql/postgresql-15-main.log")[0] == log


def test_secret_files_and_cut_sql_literals():
    out, counts = redact_text("cnry-file-40\n", name="/etc/prometheus-postgres-exporter/password")
    assert out == MASK + "\n" and counts == {"secret_file": 1}
    assert redact_text("# a comment\ncnry-41\n", name="/run/app/token")[0] == "# a comment\n%s\n" % MASK
    assert redact_text("cnry-42", name="/etc/redis/app.pass")[0] == MASK
    assert redact_text("not secret\n", name="/etc/passwords.d/README")[0] == "not secret\n"
    cut = "query | ALTER ROLE app PASSWORD 'cnry-cut-43\nnext | row\n"
    out, counts = redact_text(cut)
    assert "cnry-cut-43" not in out and "next | row" in out and counts == {"sql_password": 1}


def test_settings_and_files_are_not_secrets():
    text = ("password_encryption = scram-sha-256\npassfile=/var/lib/postgresql/.pgpass\n"
            "#ssl_passphrase_command_supports_reload = off\n"
            "runbook: check masterauth and requirepass on the replica\n"
            "DATA_SOURCE_PASS_FILE=/etc/prometheus-postgres-exporter/password\nauth_type = scram-sha-256\n"
            "auth_file = /etc/pgbouncer/userlist.txt\nauth_user = pgbouncer_auth\nauth_query = SELECT 1\n"
            "ssl_passphrase_command = ''\nmax_connections = 100\n")
    out, counts = redact_text(text)
    assert out == text
    assert counts == {}


def test_known_values_anywhere_and_url_encoded():
    out, counts = redact_text("odd place: xx p@ss/word! yy, again p%40ss%2Fword%21", known=["p@ss/word!"])
    assert "p@ss" not in out and "p%40ss" not in out
    assert counts["known_value"] == 2


def test_already_masked_is_not_counted_twice():
    redactor = Redactor()
    once = redactor.text("requirepass cnry-29\nDB_PASSWORD=x1\n")
    twice = redactor.text(once)
    assert once == twice
    assert redactor.counts == {"redis_directive": 1, "keyword": 1}


def test_data_masks_secret_keys_and_strings():
    redactor = Redactor()
    data = {"databases": [{"name": "appdb", "password": "cnry-30", "host": "pg1"}],
            "conninfo": "host=pg1 password=cnry-31", "pool_size": 20, "password_file": "/etc/x"}
    out = redactor.data(data)
    assert out == {"databases": [{"name": "appdb", "password": MASK, "host": "pg1"}],
                   "conninfo": "host=pg1 password=" + MASK, "pool_size": 20, "password_file": "/etc/x"}
    assert redactor.counts == {"keyword": 2}


def test_secret_key_and_private_key_detection():
    assert secret_key("REDIS_PASSWORD") and secret_key("db_passwd")
    assert secret_key("api_key") and secret_key("client_secret") and secret_key("REDISCLI_AUTH")
    assert not secret_key("password_encryption") and not secret_key("password_file") and not secret_key("host")
    assert has_private_key("x\n-----BEGIN PRIVATE KEY-----\n")
    assert not has_private_key("-----BEGIN CERTIFICATE-----")


def test_mask_known_for_error_messages():
    assert mask_known("auth failed for pw123 (pw1234)", ["pw123", "pw1234", None]) == "auth failed for %s (%s)" % (
        MASK, MASK)
    assert mask_known("", ["x"]) == ""
