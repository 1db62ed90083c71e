# -*- coding: utf-8 -*-
"""tests/lab/leak_check.py finds every form of a planted secret, and nothing in clean output."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location("leak_check", os.path.join(ROOT, "tests", "lab", "leak_check.py"))
leak_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(leak_check)

SECRET = "Zq8r+t/W=2vXk9LmPqRs"
SECRETS = {"postgres_app": SECRET}


@pytest.fixture
def secrets_dir(tmp_path):
    (tmp_path / "postgres_app").write_text(SECRET + "\n")
    (tmp_path / "redis_password").write_text("abcdefgh12345678 salt=xyz\n")
    (tmp_path / "short").write_text("abc\n")
    return tmp_path


def test_load_secrets_strips_salt_and_skips_short(secrets_dir):
    assert leak_check.load_secrets(str(secrets_dir)) == {"postgres_app": SECRET, "redis_password": "abcdefgh12345678"}


@pytest.mark.parametrize("line, form", [
    ('"password": "%s"' % SECRET, "raw"),
    ("postgresql://app:Zq8r%2Bt%2FW%3D2vXk9LmPqRs@pg1/appdb", "url-encoded"),
    ("dsn=app:Zq8r%2Bt%2FW%3D2vXk9LmPqRs", "url-encoded"),
    ("user app on #%s ~*" % hashlib.sha256(SECRET.encode()).hexdigest(), "redis acl #sha256"),
    ('"content": "%s"' % base64.b64encode(("x\npassword=" + SECRET + "\n").encode()).decode(), "inside base64"),
    ('"md5": "md5%s" user app' % hashlib.md5((SECRET + "app").encode()).hexdigest(), "md5 verifier for role app"),
])
def test_each_form_is_found(line, form):
    found = leak_check.find_leaks("ok: [pg1]\n" + line + "\n", SECRETS)
    assert (2, "postgres_app", form) in found


def test_scram_verifier_and_private_key_are_leaks_whatever_the_secret():
    text = ('"app" "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk+/a=:c2VydmVy"\n'
            "-----BEGIN PRIVATE KEY-----\n")
    assert leak_check.find_leaks(text, SECRETS) == [(1, "-", "SCRAM-SHA-256 verifier"), (2, "-", "PEM private key")]


def test_clean_output_has_no_leak():
    text = ("auth_type = scram-sha-256\n"
            '"checksum": "%s", "md5sum": "%s"\n' % (hashlib.sha1(b"x").hexdigest(), hashlib.md5(b"x").hexdigest())
            + '"content": "%s"\n' % base64.b64encode(b"listen_port = 6432\n" * 4).decode()
            + "-----BEGIN CERTIFICATE-----\n")
    assert leak_check.find_leaks(text, SECRETS) == []


def test_main_exit_codes(secrets_dir, tmp_path_factory, capsys):
    logs = tmp_path_factory.mktemp("logs")
    clean, leaky = logs / "clean.log", logs / "leaky.log"
    clean.write_text("PLAY RECAP\n")
    leaky.write_text("item: {password: %s}\n" % SECRET)
    assert leak_check.main(["--secrets-dir", str(secrets_dir), str(clean)]) == 0
    assert leak_check.main(["--secrets-dir", str(secrets_dir), str(clean), str(leaky)]) == 1
    out = capsys.readouterr().out
    assert "LEAK %s:1: postgres_app (raw)" % leaky in out
    assert SECRET not in out
    assert leak_check.main(["--secrets-dir", str(logs / "none"), str(clean)]) == 2
