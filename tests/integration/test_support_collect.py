# -*- coding: utf-8 -*-
"""dbstack.ha.support_collect through ansible-playbook -vvv: real files, commands and a URL, redacted on the
host; a private key never collected; check mode writes nothing; bad input refused before anything is read."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat
import tarfile

from ansible_collections.dbstack.ha.tests.integration.runner import run_module

ENV_SECRET = "cnry-env-Zq81"
CMD_SECRET = "cnry-cmd-Lr07"
KNOWN = "cnry-known-Hx33"


def plant(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "app.env").write_text("DB_HOST=pg1\nDB_PASSWORD=%s\nNOTE=the operator said %s\n" % (ENV_SECRET, KNOWN))
    (etc / "redis.conf").write_text("port 6379\nrequirepass cnry-redis-Pp21\n")
    (etc / "tls.pem").write_text("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n")
    (etc / "server.key").write_text("not even read\n")
    (etc / "big.log").write_text("old line\n" * 1000 + "the newest line\n")
    return etc


def args(tmp_path, etc, **extra):
    base = dict(
        dest=str(tmp_path / "part.tar.gz"), prefix="host1",
        files=[str(etc / "*.env"), str(etc / "*.conf"), str(etc / "*.pem"), str(etc / "*.key"), str(etc / "big.log"),
               str(etc / "nothing-*")],
        commands=[dict(name="cmd/env.txt", argv=["sh", "-c", "echo REDIS_PASSWORD=$SECRET_FOR_TEST; echo done"],
                       env=dict(SECRET_FOR_TEST=CMD_SECRET)),
                  dict(name="cmd/missing.txt", argv=["no-such-command-dbstack"]),
                  dict(name="cmd/fails.txt", argv=["sh", "-c", "echo partial; exit 3"])],
        urls=[dict(name="http/closed.json", url="http://127.0.0.1:9/none")],
        documents=[dict(name="doc/show.json", content='{"password": "cnry-doc-Ww55", "pool_size": 20}')],
        known_secrets=[KNOWN], max_bytes=4096, timeout=10)
    base.update(extra)
    return base


def members(path):
    with tarfile.open(str(path)) as archive:
        return dict((m.name, archive.extractfile(m).read().decode()) for m in archive.getmembers())


def test_collect_redacts_on_the_host(tmp_path):
    etc = plant(tmp_path)
    out, result = run_module("dbstack.ha.support_collect", args(tmp_path, etc), tmp_path)
    part = tmp_path / "part.tar.gz"
    assert result["changed"] is True and result["archive"] == str(part)
    assert stat.S_IMODE(os.stat(str(part)).st_mode) == 0o600
    items = members(part)
    text = "\n".join(items.values())
    for secret in (ENV_SECRET, CMD_SECRET, KNOWN, "cnry-redis-Pp21", "cnry-doc-Ww55", "MIIEvQIBADAN"):
        assert secret not in text and secret not in out, secret
    prefix = "host1" + str(etc)
    assert "DB_PASSWORD=********" in items[prefix + "/app.env"] and "DB_HOST=pg1" in items[prefix + "/app.env"]
    assert "requirepass ********" in items[prefix + "/redis.conf"]
    assert "REDIS_PASSWORD=********" in items["host1/cmd/env.txt"] and "done" in items["host1/cmd/env.txt"]
    assert '"password": "********"' in items["host1/doc/show.json"] and '"pool_size": 20' in items["host1/doc/show.json"]
    # The newest end of a big file, said to be cut.
    big = items[prefix + "/big.log"]
    assert big.startswith("[... first") and big.rstrip().endswith("the newest line")
    by_name = dict((i["name"], i) for i in result["items"])
    assert by_name[str(etc / "big.log").lstrip("/")]["truncated"] is True
    assert by_name["cmd/missing.txt"]["error"].startswith("not run")
    assert by_name["cmd/fails.txt"]["rc"] == 3 and "partial" in items["host1/cmd/fails.txt"]
    assert by_name["http/closed.json"]["error"]
    # Private keys: never in the archive, listed as not collected.
    reasons = dict((s["name"], s["reason"]) for s in result["not_collected"])
    assert reasons[str(etc / "tls.pem")] == "private key: never collected"
    assert reasons[str(etc / "server.key")].startswith("private key (by name)")
    assert reasons[str(etc / "nothing-*")] == "no match"
    assert not any(name.endswith((".pem", ".key")) for name in items)
    # The report: per item and rule.
    assert result["redactions"][str(etc / "app.env").lstrip("/")] == {"keyword": 1, "known_value": 1}
    assert result["per_rule"]["redis_directive"] == 1 and result["redacted"] == sum(result["per_rule"].values())


def test_check_mode_writes_nothing(tmp_path):
    etc = plant(tmp_path)
    _out, result = run_module("dbstack.ha.support_collect", args(tmp_path, etc), tmp_path, check=True)
    assert result["changed"] is True and result["redacted"] >= 3
    assert not (tmp_path / "part.tar.gz").exists()


def test_bad_input_refused(tmp_path):
    etc = plant(tmp_path)
    _out, result = run_module("dbstack.ha.support_collect", args(tmp_path, etc, dest=str(tmp_path / "no" / "x.tgz")),
                              tmp_path, expect_rc=2)
    assert "the directory" in result["msg"] and "does not exist" in result["msg"]
    twice = args(tmp_path, etc, documents=[dict(name="cmd/env.txt", content="a document named like a command")])
    _out, result = run_module("dbstack.ha.support_collect", twice, tmp_path, expect_rc=2)
    assert "named twice: cmd/env.txt" in result["msg"]
    _out, result = run_module("dbstack.ha.support_collect", args(tmp_path, etc, max_bytes=10), tmp_path, expect_rc=2)
    assert "max_bytes" in result["msg"]
    assert not (tmp_path / "part.tar.gz").exists()
