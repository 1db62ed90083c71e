"""Canary secrets for the support bundle, and the check that none of them is in it.

usage:
  python tests/lab/support_bundle_check.py plant DIR
      write canary files of every form a secret takes on this stack into DIR/files (tests/lab/support_canaries.yml
      copies them to /etc/dbstack-canary on every lab host) and DIR/canaries.json (the values, 0600)
  python tests/lab/support_bundle_check.py check BUNDLE CANARIES_JSON [LOG ...]
      fail (exit 1) when any canary - raw, URL-encoded, JSON-escaped, base64, as its SCRAM verifier or Redis
      #sha256 - is in the bundle or in the logs, when a masked key is missing (keys must stay, values go),
      when a private key was collected, when the redaction report misses a rule, or when a lab secret
      (.lab/credentials, tests/lab/leak_check.py) is in the bundle
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import string
import sys
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import leak_check  # noqa: E402  pylint: disable=wrong-import-position

MASK = "********"
FORMS = ["env", "env_export", "url_pg", "url_redis", "ini", "conninfo", "yaml", "yaml_api_key", "json", "pgpass",
         "userlist_scram", "userlist_plain", "requirepass", "masterauth", "acl_plain", "acl_hash", "auth_pass",
         "sentinel_pass", "systemd_quoted", "systemd_plain", "log_sql", "log_config_set", "activity_sql",
         "secret_file"]
# (canary form, text that must be in the bundle: the key kept, the value masked)
KEPT = [("env", "DB_PASSWORD=" + MASK), ("env_export", 'API_TOKEN="%s"' % MASK),
        ("url_pg", "postgresql://app:%s@" % MASK), ("url_redis", "redis://:%s@" % MASK),
        ("ini", "password = " + MASK), ("conninfo", "password=%s dbname=appdb" % MASK),
        ("yaml", "password: " + MASK), ("yaml_api_key", "api_key: " + MASK),
        ("json", '"password": "%s"' % MASK), ("pgpass", "pg1:5432:appdb:app:" + MASK),
        ("userlist_scram", '"canary" "%s"' % MASK), ("userlist_plain", '"canary_plain" "%s"' % MASK),
        ("requirepass", "requirepass " + MASK), ("masterauth", "masterauth " + MASK),
        ("acl_plain", "user canary on >%s #%s" % (MASK, MASK)), ("auth_pass", "sentinel auth-pass dbstack " + MASK),
        ("sentinel_pass", "sentinel sentinel-pass " + MASK), ("systemd_quoted", '"PGPASSWORD=%s"' % MASK),
        ("systemd_plain", "REDIS_PASSWORD=" + MASK), ("log_sql", "ALTER ROLE canary PASSWORD '%s'" % MASK),
        ("log_config_set", "CONFIG SET requirepass " + MASK), ("activity_sql", "PASSWORD '%s'" % MASK)]
RULES = ["keyword", "url_password", "pgpass", "scram_verifier", "userlist", "redis_directive", "redis_acl",
         "sql_password", "secret_file", "known_value"]
KEY_FILES = ["etc/dbstack-canary/canary.pem", "etc/dbstack-canary/tls.key"]


def scram_verifier(password, iterations=4096):
    """PostgreSQL's SCRAM-SHA-256 verifier for password (as pg_authid and userlist.txt hold it)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    salt64, stored64, server64 = (base64.b64encode(raw).decode() for raw in (salt, stored_key, server_key))
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, salt64, stored64, server64)


def plant(directory):
    directory = Path(directory) / "files"
    directory.mkdir(parents=True, exist_ok=True)
    alphabet = string.ascii_letters + string.digits
    values = {form: "cnry%s%s" % (form.replace("_", "")[:6], "".join(secrets.choice(alphabet) for _count in range(16)))
              for form in FORMS}
    values["userlist_scram_verifier"] = scram_verifier(values["userlist_scram"])
    values["acl_hash_hex"] = hashlib.sha256(values["acl_hash"].encode()).hexdigest()
    v = values
    files = {
        "app.env": "DB_PASSWORD=%s\nexport API_TOKEN=\"%s\"\nDATABASE_URL=postgresql://app:%s@pg1:5432/appdb\n"
                   "REDIS_URL=redis://:%s@redis1:6379/0\nDB_HOST=pg1\n"
                   % (v["env"], v["env_export"], v["url_pg"], v["url_redis"]),
        "app.ini": "[db]\nhost = pg1\npassword = %s\nconninfo = host=pg1 user=app password=%s dbname=appdb\n"
                   % (v["ini"], v["conninfo"]),
        "app.yml": "db:\n  user: app\n  password: %s\n  api_key: %s\n" % (v["yaml"], v["yaml_api_key"]),
        "app.json": json.dumps({"db": {"user": "app", "password": v["json"]}}) + "\n",
        "canary.pgpass": "# host:port:database:user:password\npg1:5432:appdb:app:%s\n" % v["pgpass"],
        "userlist.txt": '"canary" "%s"\n"canary_plain" "%s"\n' % (v["userlist_scram_verifier"], v["userlist_plain"]),
        "redis-canary.conf": "port 6379\nrequirepass %s\nmasterauth %s\nuser canary on >%s #%s ~* +@all\n"
                             "sentinel auth-pass dbstack %s\nsentinel sentinel-pass %s\n"
                             % (v["requirepass"], v["masterauth"], v["acl_plain"], v["acl_hash_hex"],
                                v["auth_pass"], v["sentinel_pass"]),
        "canary.service.conf": "[Service]\nEnvironment=\"PGPASSWORD=%s\" \"OTHER=1\"\nEnvironment=REDIS_PASSWORD=%s\n"
                               % (v["systemd_quoted"], v["systemd_plain"]),
        "app.log": "2026-12-07 01:00:00 UTC [42] LOG:  statement: ALTER ROLE canary PASSWORD '%s';\n"
                   "1:M 07 Dec 2026 01:00:01.000 * CONFIG SET requirepass %s\n" % (v["log_sql"], v["log_config_set"]),
        "password": "%s\n" % v["secret_file"],
    }
    for name, text in files.items():
        (directory / name).write_text(text)
    key = secrets.token_bytes(48)
    (directory / "canary.pem").write_text("-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n"
                                          % base64.b64encode(key).decode())
    (directory / "tls.key").write_text("-----BEGIN EC PRIVATE KEY-----\n%s\n-----END EC PRIVATE KEY-----\n"
                                       % base64.b64encode(key[::-1]).decode())
    values["private_key_body"] = base64.b64encode(key).decode()[:40]
    out = directory.parent / "canaries.json"
    out.write_text(json.dumps(values, indent=1))
    out.chmod(0o600)
    print("planted %d canary forms in %s (values: %s)" % (len(FORMS), directory, out))
    return 0


def forms_of(value):
    return {"raw": value, "url-encoded": quote(value, safe=""), "json-escaped": json.dumps(value)[1:-1],
            "base64": base64.b64encode(value.encode()).decode().rstrip("="),
            "redis acl #sha256": hashlib.sha256(value.encode()).hexdigest()}


def check(bundle, canaries_json, logs):
    values = json.loads(Path(canaries_json).read_text())
    problems = []
    mode = os.stat(bundle).st_mode & 0o777
    if mode != 0o600:
        problems.append("the bundle is mode %o, not 0600" % mode)
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(bundle) as archive:
            archive.extractall(tmp)  # our own archive, written by the run under test
        root = Path(tmp)
        texts = {str(p.relative_to(root)): p.read_text(errors="replace") for p in sorted(root.rglob("*"))
                 if p.is_file()}
        for log in logs:
            texts["log:" + log] = Path(log).read_text(errors="replace")
        for name, text in texts.items():
            for form, value in values.items():
                for how, spelled in forms_of(value).items():
                    if spelled in text:
                        problems.append("canary %s (%s) in %s" % (form, how, name))
        bundle_text = "\n".join(t for n, t in texts.items() if not n.startswith("log:"))
        for form, kept in KEPT:
            if kept not in bundle_text:
                problems.append("masked key for %s not in the bundle: %r" % (form, kept))
        for name in texts:
            if any(name.endswith(key) for key in KEY_FILES):
                problems.append("private key file collected: %s" % name)
        manifests = [n for n in texts if n.endswith("/manifest.json")]
        reports = [n for n in texts if n.endswith("/redactions.json")]
        if len(manifests) != 1 or len(reports) != 1:
            problems.append("expected one manifest.json and one redactions.json, got %s, %s" % (manifests, reports))
        else:
            manifest = json.loads(texts[manifests[0]])
            skipped = [s["name"] for host in manifest["not_collected"].values() for s in host]
            for key in KEY_FILES:
                if "/" + key not in skipped:
                    problems.append("the manifest does not list /%s as not collected" % key)
            per_rule = json.loads(texts[reports[0]])["per_rule"]
            missing = [rule for rule in RULES if not per_rule.get(rule)]
            if missing:
                problems.append("the redaction report counts nothing for %s: %s" % (missing, per_rule))
            if not any(n.endswith("/health.json") for n in texts):
                problems.append("no health.json in the bundle")
            print("bundle: %d files from %d hosts; redacted %d values: %s" % (
                len(texts) - len(logs), len(manifest["hosts"]), json.loads(texts[reports[0]])["total"], per_rule))
        lab_secrets = leak_check.load_secrets(".lab/credentials")
        for name, text in texts.items():
            for number, secret, form in leak_check.find_leaks(text, lab_secrets):
                problems.append("lab secret %s (%s) in %s:%d" % (secret, form, name, number))
    for problem in problems[:60]:
        print("FAIL " + problem)
    if len(problems) > 60:
        print("FAIL ... and %d more" % (len(problems) - 60))
    print("support bundle check: %d canary values, %d lab secrets, %d problems"
          % (len(values), len(lab_secrets), len(problems)))
    return 1 if problems else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("plant").add_argument("directory")
    checker = sub.add_parser("check")
    checker.add_argument("bundle")
    checker.add_argument("canaries")
    checker.add_argument("logs", nargs="*")
    args = parser.parse_args(argv)
    if args.command == "plant":
        return plant(args.directory)
    return check(args.bundle, args.canaries, args.logs)


if __name__ == "__main__":
    sys.exit(main())
