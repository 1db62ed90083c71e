# -*- coding: utf-8 -*-
"""dbstack.ha.pg_backup against a real PostgreSQL with a pgbench data set, constraints, sequences and large objects."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import shutil
import stat
import subprocess

import psycopg
import pytest

from ansible_collections.dbstack.ha.tests.integration.runner import run_module
from ansible_collections.dbstack.ha.tests.integration.servers import PG_BIN, lone_primary

PASSWORD = "backup-Super-Pw-7"
APP_PASSWORD = "backup-App-Pw-8"
SOURCE = "shop"

SCHEMA = """
CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE CHECK (email LIKE '%@%'));
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id),
                     total numeric(10, 2) NOT NULL CHECK (total >= 0), doc oid);
CREATE SEQUENCE invoice_no START 1000 INCREMENT 7;
INSERT INTO customers (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 500) g;
INSERT INTO orders (customer_id, total) SELECT 1 + g % 500, g % 97 FROM generate_series(1, 2000) g;
UPDATE orders SET doc = lo_from_bytea(0, convert_to('invoice ' || id, 'UTF8')) WHERE id <= 3;
SELECT nextval('invoice_no') FROM generate_series(1, 5);
"""

FINGERPRINT = """
SELECT json_build_object(
  'accounts', (SELECT count(*) FROM pgbench_accounts), 'branches', (SELECT count(*) FROM pgbench_branches),
  'tellers', (SELECT count(*) FROM pgbench_tellers), 'customers', (SELECT count(*) FROM customers),
  'orders', (SELECT count(*) FROM orders), 'balance', (SELECT sum(abalance) FROM pgbench_accounts),
  'invoice_no', (SELECT last_value FROM invoice_no), 'customers_seq', (SELECT last_value FROM customers_id_seq),
  'orders_seq', (SELECT last_value FROM orders_id_seq),
  'los', (SELECT string_agg(oid::text || ':' || encode(lo_get(oid), 'escape'), ',' ORDER BY oid)
          FROM pg_largeobject_metadata),
  'fks', (SELECT count(*) FROM pg_constraint WHERE contype IN ('f', 'c', 'u', 'p')
          AND connamespace = 'public'::regnamespace))
"""


@pytest.fixture(scope="module")
def pg():
    with lone_primary("dbstack-backup-", PASSWORD) as node:
        node.psql("CREATE ROLE app LOGIN PASSWORD '%s'" % APP_PASSWORD)
        node.psql("CREATE DATABASE %s" % SOURCE)
        node._run([os.path.join(PG_BIN, "pgbench"), "-i", "-s", "1", "-q", "-h", node.socket_dir, "-p", str(node.port),
                   "-U", "postgres", SOURCE], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for statement in SCHEMA.strip().split(";\n"):
            node.psql(statement, dbname=SOURCE)
        yield node


@pytest.fixture
def dest(tmp_path):
    path = tmp_path / "backups"
    return str(path)


@pytest.fixture(scope="module")
def seed(pg, tmp_path_factory):
    """One real backup, taken once; tests that only need a backup copy it (manifest and archive) into their dest."""
    work = tmp_path_factory.mktemp("seed")
    folder = str(work / "backups")
    _out, result = run_module("dbstack.ha.pg_backup", args_for(pg, folder), work)
    return folder, result["backup"]


def seeded(seed, dest):
    folder, backup = seed
    if not os.path.isdir(dest):
        os.makedirs(dest, 0o700)
    for name in (backup["archive"], backup["name"] + ".manifest.json"):
        shutil.copy(os.path.join(folder, name), os.path.join(dest, name))
    return dict(backup, path=os.path.join(dest, backup["archive"]))


def args_for(node, dest, **extra):
    args = dict(login_host="127.0.0.1", login_port=node.port, login_user="postgres", login_password=PASSWORD,
                database=SOURCE, dest=dest)
    args.update(extra)
    return args


def fingerprint(node, dbname):
    return json.loads(node.psql(FINGERPRINT, dbname=dbname))


def run(name_args, tmp_path, **kwargs):
    work = tmp_path / ("run%d" % len(list(tmp_path.glob("run*"))))
    work.mkdir()
    return run_module("dbstack.ha.pg_backup", name_args, work, **kwargs)


def drop(node, dbname):
    node.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % dbname)


def test_round_trip_custom_format(pg, dest, tmp_path):
    output, result = run(args_for(pg, dest, keep=3), tmp_path)
    assert result["changed"] is True and result["skipped"] is False
    backup = result["backup"]
    assert backup["format"] == "custom" and backup["database"] == SOURCE
    assert backup["server_version"].startswith("15.") and backup["client_version"].startswith("15.")
    assert backup["tables"]["public.pgbench_accounts"] == 100000
    assert backup["tables"]["public.orders"] == 2000
    assert backup["large_objects"] == 3
    assert backup["size_bytes"] == os.path.getsize(result["path"]) > 0
    assert len(backup["sha256"]) == 64 and backup["duration_seconds"] > 0
    assert result["path"].endswith(".dump") and os.path.basename(result["path"]) == backup["archive"]
    manifest_path = os.path.join(dest, backup["name"] + ".manifest.json")
    with open(manifest_path) as handle:
        manifest = json.load(handle)
    assert manifest["sha256"] == backup["sha256"]
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o700
    assert not [e for e in os.listdir(dest) if e.startswith(".dbstack-partial")]
    assert PASSWORD not in output and PASSWORD not in json.dumps(manifest)

    drop(pg, "shop_copy")
    _out, restored = run(args_for(pg, dest, state="restored", target_database="shop_copy", target_owner="app",
                                  jobs=2), tmp_path)
    assert restored["changed"] is True and restored["restored"] is True
    assert restored["backup"]["name"] == backup["name"]
    assert restored["verification"]["checksum"] == "ok"
    assert fingerprint(pg, "shop_copy") == fingerprint(pg, SOURCE)
    assert pg.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'customers'", dbname="shop_copy") == "app"
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname LIKE '%dbstack_restoring'") == "0"
    drop(pg, "shop_copy")


def test_directory_format_with_restore_test(pg, dest, tmp_path):
    _out, result = run(args_for(pg, dest, format="directory", jobs=2), tmp_path)
    assert result["backup"]["format"] == "directory" and os.path.isdir(result["path"])
    assert result["path"].endswith(".dir")
    _out, verified = run(args_for(pg, dest, state="verified", restore_test=True, jobs=2), tmp_path)
    assert verified["changed"] is False
    test = verified["verification"]["restore_test"]
    assert test["tables"] == 6 and test["rows"] == 100000 + 1 + 10 + 500 + 2000
    assert test["large_objects"] == 3
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'dbstack_restore_test'") == "0"


def test_check_mode_changes_nothing(pg, seed, dest, tmp_path):
    backup = seeded(seed, dest)
    before = sorted(os.listdir(dest))
    _out, result = run(args_for(pg, dest, keep=1), tmp_path, check=True)
    assert result["changed"] is True
    assert any(a.startswith("dump %s" % SOURCE) for a in result["actions"])
    assert result["pruned"] == [backup["name"]] and "prune %s" % backup["name"] in result["actions"]
    assert sorted(os.listdir(dest)) == before
    pg.psql("CREATE DATABASE shop_check")
    pg.psql("CREATE TABLE keep_me (id int)", dbname="shop_check")
    _out, result = run(args_for(pg, dest, state="restored", target_database="shop_check", force=True), tmp_path,
                       check=True)
    assert result["changed"] is True and result["restored"] is True
    assert any("would replace database shop_check" in a for a in result["actions"])
    assert pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'keep_me'", dbname="shop_check") == "1"
    assert sorted(os.listdir(dest)) == before
    drop(pg, "shop_check")


def test_max_age_second_run_unchanged(pg, dest, tmp_path):
    _out, first = run(args_for(pg, dest, max_age="1h"), tmp_path)
    assert first["changed"] is True
    _out, second = run(args_for(pg, dest, max_age="1h"), tmp_path)
    assert second["changed"] is False and second["skipped"] is True
    assert second["backup"]["name"] == first["backup"]["name"]
    assert len(glob.glob(os.path.join(dest, "*.manifest.json"))) == 1


def fake_older(dest, backup, days_ago, suffix):
    """A copy of a real backup that looks `days_ago` days older (ours: it has a manifest)."""
    with open(os.path.join(dest, backup["name"] + ".manifest.json")) as handle:
        manifest = json.load(handle)
    name = "%s-2026010%dT000000Z" % (SOURCE, suffix)
    manifest.update(name=name, archive=name + ".dump", created_epoch=manifest["created_epoch"] - days_ago * 86400)
    shutil.copy(os.path.join(dest, backup["archive"]), os.path.join(dest, name + ".dump"))
    with open(os.path.join(dest, name + ".manifest.json"), "w") as handle:
        json.dump(manifest, handle)
    return name


def test_retention_prunes_only_its_own(pg, seed, dest, tmp_path):
    first = dict(backup=seeded(seed, dest))
    older = [fake_older(dest, first["backup"], days, days) for days in (1, 2, 3)]
    foreign = {"notes.txt": "keep", "shop-20200101T000000Z.dump": "not ours: no manifest",
               "other.manifest.json": "{\"not\": \"ours\"}"}
    for name, text in foreign.items():
        with open(os.path.join(dest, name), "w") as handle:
            handle.write(text)
    _out, result = run(args_for(pg, dest, keep=2, keep_days=2), tmp_path)
    # keep=2: the new one and `first`; keep_days=2: also the 1-day-old copy.
    assert sorted(result["pruned"]) == sorted(older[1:])
    assert result["kept"] == [result["backup"]["name"], first["backup"]["name"], older[0]]
    for name in foreign:
        assert os.path.exists(os.path.join(dest, name))
    for name in older[1:]:
        assert not glob.glob(os.path.join(dest, name + "*"))
    _out, again = run(args_for(pg, dest, keep=1, max_age="1h"), tmp_path)
    assert again["skipped"] is True and len(again["pruned"]) == 2 and again["changed"] is True
    left = list(foreign) + [again["backup"]["archive"], again["backup"]["name"] + ".manifest.json",
                            ".dbstack-backup.lock"]
    assert sorted(os.listdir(dest)) == sorted(left)


def test_truncated_archive_detected_and_target_untouched(pg, seed, dest, tmp_path):
    backup = seeded(seed, dest)
    result = dict(backup=backup, path=backup["path"])
    with open(result["path"], "r+b") as handle:
        handle.truncate(os.path.getsize(result["path"]) // 2)
    _out, verified = run(args_for(pg, dest, state="verified", name=result["backup"]["name"]), tmp_path,
                         expect_rc=2)
    assert "corrupt or truncated" in verified["msg"]
    pg.psql("CREATE DATABASE shop_target")
    pg.psql("CREATE TABLE precious (id int); INSERT INTO precious VALUES (1)", dbname="shop_target")
    _out, restored = run(args_for(pg, dest, state="restored", target_database="shop_target", force=True,
                                  name=result["backup"]["name"]), tmp_path, expect_rc=2)
    assert "corrupt or truncated" in restored["msg"] and "Nothing was restored" in restored["msg"]
    assert pg.psql("SELECT count(*) FROM precious", dbname="shop_target") == "1"
    # A corrupted byte (same size) is caught too, and a mended manifest would still need pg_restore --list.
    fresh = seeded(seed, dest)
    with open(fresh["path"], "r+b") as handle:
        handle.seek(10)
        handle.write(b"\xff\xff\xff\xff")
    _out, verified = run(args_for(pg, dest, state="verified"), tmp_path, expect_rc=2)
    assert "corrupt or truncated" in verified["msg"]
    drop(pg, "shop_target")


def test_restore_refuses_without_force_then_replaces(pg, seed, dest, tmp_path):
    seeded(seed, dest)
    pg.psql("CREATE DATABASE shop_live")
    pg.psql("CREATE TABLE old_stuff (id int)", dbname="shop_live")
    _out, refused = run(args_for(pg, dest, state="restored", target_database="shop_live"), tmp_path, expect_rc=2)
    assert "exists: refusing" in refused["msg"] and "force=true" in refused["msg"]
    assert pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'old_stuff'", dbname="shop_live") == "1"
    session = psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", password=PASSWORD, dbname="shop_live",
                              autocommit=True)
    try:
        _out, restored = run(args_for(pg, dest, state="restored", target_database="shop_live", force=True), tmp_path)
    finally:
        session.close()
    assert restored["terminated_connections"] == 1
    assert pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'old_stuff'", dbname="shop_live") == "0"
    assert fingerprint(pg, "shop_live") == fingerprint(pg, SOURCE)
    drop(pg, "shop_live")


def test_external_style_dsn_verify_full(pg, dest, tmp_path):
    dsn = "postgresql://postgres@127.0.0.1:%d/%s?sslmode=verify-full&sslrootcert=%s" % (pg.port, SOURCE, pg.pki["ca"])
    output, result = run(dict(dsn=dsn, login_password=PASSWORD, dest=dest, format="directory", jobs=2), tmp_path)
    assert result["backup"]["database"] == SOURCE
    assert "sslmode=verify-full" in result["backup"]["source"]
    assert PASSWORD not in output


def fake_bin(tmp_path, pg_dump_script):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pg_dump").write_text(pg_dump_script)
    (bin_dir / "pg_dump").chmod(0o755)
    os.symlink(os.path.join(PG_BIN, "pg_restore"), str(bin_dir / "pg_restore"))
    return str(bin_dir)


def test_password_only_in_a_private_passfile(pg, dest, tmp_path):
    log = tmp_path / "pg_dump.log"
    bin_dir = fake_bin(tmp_path, "\n".join([
        "#!/bin/bash",
        "if [ \"$1\" != --version ]; then",
        "  { echo \"argv: $*\"; echo \"PGPASSWORD=${PGPASSWORD-unset}\"; echo \"passfile: $PGPASSFILE\";",
        "    stat -c 'mode %a' \"$PGPASSFILE\"; cat /proc/$$/cmdline | tr '\\0' ' '; echo; } >> " + str(log),
        "fi",
        "exec %s \"$@\"" % os.path.join(PG_BIN, "pg_dump"), ""]))
    output, result = run(args_for(pg, dest, pg_bin_dir=bin_dir), tmp_path)
    text = log.read_text()
    assert "argv: --dbname=" in text and "PGPASSWORD=unset" in text and "mode 600" in text
    assert PASSWORD not in text and PASSWORD not in output
    passfile = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("passfile: ")][0]
    assert not os.path.exists(passfile)  # removed after the run
    with open(os.path.join(dest, result["backup"]["name"] + ".manifest.json")) as handle:
        assert PASSWORD not in handle.read()


def test_old_pg_dump_is_refused(pg, dest, tmp_path):
    bin_dir = fake_bin(tmp_path, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 14.9 (Debian 14.9-1)'\n")
    _out, result = run(args_for(pg, dest, pg_bin_dir=bin_dir), tmp_path, expect_rc=2)
    assert "cannot dump a newer server" in result["msg"] and "postgresql-client-15" in result["msg"]
    assert not glob.glob(os.path.join(dest, "*.manifest.json"))


def test_wrong_password_is_clear_and_hidden(pg, dest, tmp_path):
    output, result = run(args_for(pg, dest, login_password="Wrong-Backup-Pw-3"), tmp_path, expect_rc=2)
    assert "password authentication failed" in result["msg"]
    assert result["msg"].startswith("Unable to connect to PostgreSQL (host=127.0.0.1")
    assert "Wrong-Backup-Pw-3" not in output


def test_unreachable_server(dest, tmp_path):
    _out, result = run(dict(login_host="127.0.0.1", login_port=1, login_password=PASSWORD, connect_timeout=2,
                            database=SOURCE, dest=dest), tmp_path, expect_rc=2)
    assert result["msg"].startswith("Unable to connect to PostgreSQL (host=127.0.0.1 port=1")
    assert PASSWORD not in _out


def test_unwritable_dest_and_no_space(pg, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    output, result = run(args_for(pg, str(blocker / "backups")), tmp_path, expect_rc=2)
    assert "cannot be created" in result["msg"] and "Not a directory" in result["msg"]
    assert PASSWORD not in output
    dest = str(tmp_path / "small")
    _out, result = run(args_for(pg, dest, free_space_factor=1e9), tmp_path, expect_rc=2)
    assert "not enough free space in %s" % dest in result["msg"]
    assert os.listdir(dest) == [".dbstack-backup.lock"]
