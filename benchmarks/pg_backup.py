"""How fast dbstack.ha.pg_backup dumps, next to a bare pg_dump and community.postgresql's postgresql_db, in one run.

Starts its own throw-away PostgreSQL on loopback (tests/integration/servers.py:
scram, TLS available, fsync off), loads `pgbench -i -s SCALE` (scale 10 is
about 157 MB), then for each run dumps the same database with:

  bare pg_dump -Fc                 pg_dump over TCP, password from a 0600 passfile - the floor
  pg_backup custom                 dbstack.ha.pg_backup format=custom (checksum, manifest, row counts in the dump's snapshot)
  pg_backup custom, no row counts  the same with row_counts=false
  pg_backup directory -j JOBS      format=directory, jobs=JOBS
  postgresql_db state=dump         community.postgresql's module, target *.pgc (custom format)

The modules run as Ansible runs them on the target host - the module file executed by Python with its
arguments in a JSON file - so the figures are the module's own cost, without the controller's
start-up; --ansible also times each module through `ansible localhost -m` (add ~1 s or more of Ansible).
Prints min / median / max seconds, MB/s (database size / median) and each median's ratio to the bare
pg_dump's, and the archive sizes. Nothing outside a temporary directory is touched.

    .venv/bin/python benchmarks/pg_backup.py [--runs 5] [--scale 10] [--jobs 2] [--ansible]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import lablib  # tests/lablib.py (this directory holds a symlink to it)

REPO = lablib.REPO
servers = lablib.loopback_servers()

PASSWORD = "bench-Backup-Pw-1"
DBNAME = "bench"
PG_BACKUP = os.path.join(REPO, "plugins", "modules", "pg_backup.py")


def community_module(name):
    import ansible_collections.community.postgresql as community  # the ansible bundle's copy
    return os.path.join(list(community.__path__)[0], "plugins", "modules", name + ".py")


def tree_size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f)) for root, _d, files in os.walk(path) for f in files)


class Bench(object):
    def __init__(self, node, work, use_ansible):
        self.node = node
        self.work = work
        self.use_ansible = use_ansible
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [os.path.join(REPO, ".build", "collections")] + [p for p in sys.path if p.endswith("site-packages")]),
            ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"),
            ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
        self.conn = dict(login_host="127.0.0.1", login_port=node.port, login_user="postgres",
                         login_password=PASSWORD)

    def fresh(self, name):
        path = os.path.join(self.work, name)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        return path

    def bare(self):
        out = os.path.join(self.fresh("bare"), "bench.dump")
        env = dict(os.environ, PGPASSFILE=self.node.pgpass)
        start = time.monotonic()
        subprocess.run([os.path.join(servers.PG_BIN, "pg_dump"), "-Fc", "-h", "127.0.0.1", "-p", str(self.node.port),
                        "-U", "postgres", "-f", out, DBNAME], env=env, check=True)
        return time.monotonic() - start, tree_size(out), None

    def module(self, path, args, fqcn):
        """Run a module file the way Ansible does on the target; returns (seconds, result)."""
        args_file = os.path.join(self.work, "args.json")
        with open(args_file, "w") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
        os.chmod(args_file, 0o600)
        start = time.monotonic()
        proc = subprocess.run([sys.executable, path, args_file], env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, check=False)
        elapsed = time.monotonic() - start
        result = json.loads(proc.stdout[proc.stdout.index("{"):])
        if result.get("failed"):
            raise RuntimeError("%s failed: %s" % (fqcn, result.get("msg")))
        if self.use_ansible:
            start = time.monotonic()
            subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local",
                            "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % sys.executable,
                            "-m", fqcn, "-a", json.dumps(args)], env=self.env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            result["_ansible_seconds"] = time.monotonic() - start
        return elapsed, result

    def pg_backup(self, fmt, jobs=1, row_counts=True):
        dest = self.fresh("pg_backup")
        args = dict(self.conn, database=DBNAME, dest=dest, format=fmt, jobs=jobs, row_counts=row_counts)
        if self.use_ansible:
            args["keep"] = 1
        elapsed, result = self.module(PG_BACKUP, args, "dbstack.ha.pg_backup")
        return elapsed, result["backup"]["size_bytes"], result

    def community(self):
        dest = self.fresh("community")
        args = dict(self.conn, name=DBNAME, state="dump", target=os.path.join(dest, "bench.pgc"))
        elapsed, result = self.module(community_module("postgresql_db"), args, "community.postgresql.postgresql_db")
        return elapsed, tree_size(os.path.join(dest, "bench.pgc")), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--ansible", action="store_true", help="also time each module through `ansible -m`")
    args = parser.parse_args()
    if not 1 <= args.runs <= 30:
        parser.error("--runs must be between 1 and 30")
    if not 1 <= args.scale <= 100:
        parser.error("--scale must be between 1 and 100")

    base = tempfile.mkdtemp(prefix="dbstack-bench-backup-")
    runas = servers.RunAs()
    node = servers.PostgresNode(base, "pgdata", runas, servers.private_dir(base, runas), PASSWORD)
    work = os.path.join(base, "out")
    os.makedirs(work)
    try:
        node.init_primary().start()
        node.psql("CREATE DATABASE %s" % DBNAME)
        start = time.monotonic()
        node._run([os.path.join(servers.PG_BIN, "pgbench"), "-i", "-s", str(args.scale), "-q", "-h", node.socket_dir,
                   "-p", str(node.port), "-U", "postgres", DBNAME], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        node.psql("VACUUM ANALYZE", dbname=DBNAME)
        db_bytes = int(node.psql("SELECT pg_database_size('%s')" % DBNAME))
        print("database: pgbench scale %d, %.1f MB (pg_database_size), loaded in %.1f s; PostgreSQL %s"
              % (args.scale, db_bytes / 1e6, time.monotonic() - start, node.psql("SHOW server_version")))

        bench = Bench(node, work, args.ansible)
        variants = [
            ("bare pg_dump -Fc", bench.bare),
            ("pg_backup custom", lambda: bench.pg_backup("custom")),
            ("pg_backup custom, no row counts", lambda: bench.pg_backup("custom", row_counts=False)),
            ("pg_backup directory -j%d" % args.jobs, lambda: bench.pg_backup("directory", jobs=args.jobs)),
            ("postgresql_db state=dump (.pgc)", bench.community),
        ]
        times = dict((name, []) for name, _f in variants)
        inner = dict((name, []) for name, _f in variants)
        through = dict((name, []) for name, _f in variants)
        sizes = {}
        bench.bare()  # warm the cache once
        for run in range(args.runs):
            for name, func in variants:  # interleaved, so drift hits every variant alike
                elapsed, size, result = func()
                times[name].append(elapsed)
                sizes[name] = size
                if result and result.get("backup"):
                    inner[name].append(result["backup"]["duration_seconds"])
                if result and "_ansible_seconds" in result:
                    through[name].append(result["_ansible_seconds"])
            print("run %d/%d done" % (run + 1, args.runs), file=sys.stderr)

        floor = statistics.median(times["bare pg_dump -Fc"])
        print()
        header = ("variant", "min s", "median", "max s", "MB/s", "ratio", "archive", "notes")
        print("%-34s %7s %7s %7s %8s %7s %10s %s" % header)
        for name, _f in variants:
            values = times[name]
            median = statistics.median(values)
            notes = []
            if inner[name]:
                notes.append("pg_dump inside the module: median %.2f s" % statistics.median(inner[name]))
            if through[name]:
                notes.append("through ansible -m: median %.2f s (%.1fx)" % (
                    statistics.median(through[name]), statistics.median(through[name]) / floor))
            print("%-34s %7.2f %7.2f %7.2f %8.1f %6.2fx %8.2f MB %s" % (
                name, min(values), median, max(values), db_bytes / 1e6 / median, median / floor,
                sizes[name] / 1e6, "; ".join(notes)))
        print("\n%d runs each; MB/s = database size / median; ratio = median / bare pg_dump's median." % args.runs)
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
