"""Fail when a lab secret shows in a playbook's output.

usage: python tests/lab/leak_check.py [--secrets-dir .lab/credentials] LOG [LOG ...]

Every file under the secrets directory holds one secret (the lab's
`password` lookups). A log leaks when it holds, for any secret:
  - the secret itself, URL-encoded (quote / quote_plus) or JSON-escaped;
  - the secret inside any base64 blob (slurp, module arguments, ...);
  - a derived form as good as the secret: a SCRAM-SHA-256 verifier (any, since
    the only place one may live is the files that must hold it, never
    output), PostgreSQL's md5 form (md5 + md5(secret + role)) for any role
    named in the log, Redis' ACL form (#sha256 hex);
  - a PEM private key block.
Exit 0 with a one-line summary when nothing leaked; exit 1 naming the file,
the line, the secret's file name and the form (never the secret itself).
"""
import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

SCRAM_VERIFIER = re.compile(r"SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
BASE64_BLOB = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
ROLE_NAME = re.compile(r"\b[a-z_][a-z0-9_]{0,62}\b")
MD5_VERIFIER = re.compile(r"md5[0-9a-f]{32}")


def load_secrets(directory):
    """{file name: secret} for every non-empty file below directory."""
    secrets = {}
    for path in sorted(Path(directory).rglob("*")):
        if path.is_file():
            # The password lookup stores "secret" or "secret salt=..." on one line.
            value = path.read_text(encoding="utf-8").strip().split(" salt=")[0]
            if len(value) >= 8:
                secrets[str(path.relative_to(directory))] = value
    return secrets


def plain_forms(secret):
    """Forms that are the secret itself, spelled another way."""
    forms = {"raw": secret, "url-encoded": quote(secret, safe=""), "url-encoded (plus)": quote_plus(secret),
             "json-escaped": json.dumps(secret)[1:-1], "redis acl #sha256": hashlib.sha256(secret.encode()).hexdigest()}
    return {name: form for name, form in forms.items() if form}


def decoded_blobs(line):
    """Text of every base64 blob in a line that decodes."""
    for match in BASE64_BLOB.finditer(line):
        blob = match.group(0)
        try:
            yield base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            continue


def md5_verifiers(text, secrets):
    """{md5 verifier: (secret name, role)} for every word of text taken as a role name."""
    return {"md5" + hashlib.md5((secret + role).encode()).hexdigest(): (name, role)
            for role in set(ROLE_NAME.findall(text)) for name, secret in secrets.items()}


def find_leaks(text, secrets):
    """[(line number, secret name, form)] for every leak in text."""
    leaks = []
    forms = {name: plain_forms(secret) for name, secret in secrets.items()}
    md5_forms = md5_verifiers(text, secrets) if MD5_VERIFIER.search(text) else {}
    for number, line in enumerate(text.splitlines(), 1):
        if SCRAM_VERIFIER.search(line):
            leaks.append((number, "-", "SCRAM-SHA-256 verifier"))
        if PRIVATE_KEY.search(line):
            leaks.append((number, "-", "PEM private key"))
        for token in MD5_VERIFIER.findall(line):
            if token in md5_forms:
                leaks.append((number, md5_forms[token][0], "md5 verifier for role %s" % md5_forms[token][1]))
        blobs = list(decoded_blobs(line))
        for name, secret in secrets.items():
            leaks.extend((number, name, form_name) for form_name, form in forms[name].items() if form in line)
            if any(secret in blob for blob in blobs):
                leaks.append((number, name, "inside base64"))
    return leaks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets-dir", default=".lab/credentials")
    parser.add_argument("logs", nargs="+")
    args = parser.parse_args(argv)
    secrets = load_secrets(args.secrets_dir)
    if not secrets:
        print("leak check: no secrets under %s: nothing to check against" % args.secrets_dir)
        return 2
    total = 0
    for log in args.logs:
        text = Path(log).read_text(encoding="utf-8", errors="replace")
        for number, name, form in find_leaks(text, secrets):
            total += 1
            print("LEAK %s:%d: %s (%s)" % (log, number, name, form))
    print("leak check: %d logs, %d secrets, %d leaks" % (len(args.logs), len(secrets), total))
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
