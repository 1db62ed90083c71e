"""How fast dbstack.ha.pg_backup dumps, next to a bare pg_dump and community.postgresql's postgresql_db, in one run.

Starts its own throw-away PostgreSQL on loopback (tests/integration/servers.py:
scram, TLS available, fsync off) and builds one database per size (--sizes, all three by default):

  empty    a database with no tables: the fixed cost of each tool
  165mb    `pgbench -i -s SCALE` (scale 10 is about 165 MB)
  1gb      >= 1 GB of realistic, poorly compressible rows (random base64 text and random bytea, made with
           SQL in the throw-away server: gen_random_bytes(); nothing is cached anywhere)

then for each size and run dumps the same database with:

  bare pg_dump -Fc                 pg_dump over TCP, password from a 0600 passfile - the floor
  pg_backup custom                 dbstack.ha.pg_backup format=custom (checksum, manifest, row counts in the dump's snapshot)
  pg_backup custom, no row counts  the same with row_counts=false
  pg_backup directory -j JOBS      format=directory, jobs=JOBS
  postgresql_db state=dump         community.postgresql's module, target *.pgc (custom format)

The modules run as Ansible runs them on the target host - the module file executed by Python with its
arguments in a JSON file - so the figures are the module's own cost, without the controller's
start-up; --ansible also times each module through `ansible localhost -m` (add ~1 s or more of Ansible).
Prints, per size, min / median / max seconds, MB/s (database size / median) and each median's ratio to the
bare pg_dump's, and the archive sizes; then one summary line per size: bare pg_dump vs pg_backup vs
postgresql_db medians and pg_backup's fixed overhead (median minus bare pg_dump's median).
The 1gb size runs only the three headline variants (a dump takes tens of seconds) and skips --ansible.
Nothing outside a temporary directory is touched.

    .venv/bin/python benchmarks/pg_backup.py [--runs 5] [--sizes empty,165mb,1gb] [--scale 10] [--jobs 2] [--ansible]
                                             [--baseline CHECKOUT]
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
SIZES = ("empty", "165mb", "1gb")
BASELINE = "pg_backup custom, baseline"
BIG_BYTES = 1_000_000_000  # the 1gb size: at least this pg_database_size()
BIG_ROW_BYTES = 1100       # about what one generated row takes on disk
# One realistic, poorly compressible row: an id, a time, 600 random bytes as base64 text (like a token or an
# encoded document; zlib gets it to ~75 %) and 200 random bytes as bytea (dumped as hex).
BIG_TABLE = """
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE events (id bigint NOT NULL, created timestamptz NOT NULL, note text NOT NULL, payload bytea NOT NULL)
"""
BIG_INSERT = """
INSERT INTO events
SELECT g, timestamptz '2026-01-01' + g * interval '1 second', encode(gen_random_bytes(600), 'base64'),
       gen_random_bytes(200)
  FROM generate_series(%d, %d) g
"""
PG_BACKUP = os.path.join(REPO, "plugins", "modules", "pg_backup.py")


def community_module(name):
    import ansible_collections.community.postgresql as community  # the ansible bundle's copy
    return os.path.join(list(community.__path__)[0], "plugins", "modules", name + ".py")


def tree_size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f)) for root, _d, files in os.walk(path) for f in files)


def collection_env(collections):
    """The environment a module runs in: this venv's packages and dbstack.ha from `collections`."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [collections] + [p for p in sys.path if p.endswith("site-packages")]),
        ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))


def baseline_collections(work, checkout):
    """A collections folder where `checkout` (another revision of this repository) is dbstack.ha."""
    path = os.path.join(work, "baseline-collections")
    link = os.path.join(path, "ansible_collections", "dbstack", "ha")
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link))
        os.symlink(os.path.abspath(checkout), link)
    return path


class Bench(object):
    def __init__(self, node, work, use_ansible, dbname, baseline=None):
        self.dbname = dbname
        self.node = node
        self.work = work
        self.use_ansible = use_ansible
        self.env = collection_env(os.path.join(REPO, ".build", "collections"))
        self.baseline = baseline
        if baseline:
            self.baseline_env = collection_env(baseline_collections(work, baseline))
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
                        "-U", "postgres", "-f", out, self.dbname], env=env, check=True)
        return time.monotonic() - start, tree_size(out), None

    def module(self, path, args, fqcn, env=None):
        """Run a module file the way Ansible does on the target; returns (seconds, result)."""
        env = env or self.env
        args_file = os.path.join(self.work, "args.json")
        with open(args_file, "w") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
        os.chmod(args_file, 0o600)
        start = time.monotonic()
        proc = subprocess.run([sys.executable, path, args_file], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, check=False)
        elapsed = time.monotonic() - start
        result = json.loads(proc.stdout[proc.stdout.index("{"):])
        if result.get("failed"):
            raise RuntimeError("%s failed: %s" % (fqcn, result.get("msg")))
        if self.use_ansible and env is self.env:
            start = time.monotonic()
            subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local",
                            "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % sys.executable,
                            "-m", fqcn, "-a", json.dumps(args)], env=self.env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            result["_ansible_seconds"] = time.monotonic() - start
        return elapsed, result

    def pg_backup(self, fmt, jobs=1, row_counts=True, baseline=False):
        dest = self.fresh("pg_backup")
        args = dict(self.conn, database=self.dbname, dest=dest, format=fmt, jobs=jobs, row_counts=row_counts)
        if self.use_ansible:
            args["keep"] = 1
        if baseline:
            elapsed, result = self.module(os.path.join(self.baseline, "plugins", "modules", "pg_backup.py"), args,
                                          "dbstack.ha.pg_backup", env=self.baseline_env)
        else:
            elapsed, result = self.module(PG_BACKUP, args, "dbstack.ha.pg_backup")
        return elapsed, result["backup"]["size_bytes"], result

    def community(self):
        dest = self.fresh("community")
        args = dict(self.conn, name=self.dbname, state="dump", target=os.path.join(dest, "bench.pgc"))
        elapsed, result = self.module(community_module("postgresql_db"), args, "community.postgresql.postgresql_db")
        return elapsed, tree_size(os.path.join(dest, "bench.pgc")), result


def load(node, size, scale):
    """Create and fill the database of one size; returns (name, description)."""
    dbname = "bench_" + size
    node.psql("CREATE DATABASE %s" % dbname)
    start = time.monotonic()
    if size == "165mb":
        node._run([os.path.join(servers.PG_BIN, "pgbench"), "-i", "-s", str(scale), "-q", "-h", node.socket_dir,
                   "-p", str(node.port), "-U", "postgres", dbname], stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL)
        what = "pgbench scale %d" % scale
    elif size == "1gb":
        for statement in BIG_TABLE.strip().split(";\n"):
            node.psql(statement, dbname=dbname)
        rows = BIG_BYTES // BIG_ROW_BYTES + 1
        half = rows // 2
        # two sessions at once: the machine has two cores
        procs = [subprocess.Popen([os.path.join(servers.PG_BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                   "-h", node.socket_dir, "-p", str(node.port), "-U", "postgres", "-d", dbname,
                                   "-c", BIG_INSERT % (lo, hi)], env=dict(os.environ, PGPASSFILE=node.pgpass),
                                  cwd=node.base, **node.runas.popen_kwargs())
                 for lo, hi in ((1, half), (half + 1, rows))]
        if any(proc.wait() != 0 for proc in procs):
            raise RuntimeError("generating the 1gb data set failed")
        node.psql("ALTER TABLE events ADD PRIMARY KEY (id)", dbname=dbname)
        while int(node.psql("SELECT pg_database_size('%s')" % dbname)) < BIG_BYTES:
            node.psql(BIG_INSERT % (rows + 1, rows + 50000), dbname=dbname)
            rows += 50000
        what = "%d rows of random base64 text + bytea" % rows
    else:
        what = "no tables"
    node.psql("VACUUM ANALYZE", dbname=dbname)
    db_bytes = int(node.psql("SELECT pg_database_size('%s')" % dbname))
    print("database %s: %s, %.1f MB (pg_database_size), made in %.1f s"
          % (dbname, what, db_bytes / 1e6, time.monotonic() - start), flush=True)
    return dbname, db_bytes


def measure(node, work, size, dbname, db_bytes, args):
    """All runs of one size; prints its table and returns {variant: median seconds}."""
    big = size == "1gb"
    bench = Bench(node, work, args.ansible and not big, dbname, args.baseline)
    variants = [
        ("bare pg_dump -Fc", bench.bare),
        ("pg_backup custom", lambda: bench.pg_backup("custom")),
    ]
    if args.baseline:
        variants.append((BASELINE, lambda: bench.pg_backup("custom", baseline=True)))
    if not big:
        variants += [
            ("pg_backup custom, no row counts", lambda: bench.pg_backup("custom", row_counts=False)),
            ("pg_backup directory -j%d" % args.jobs, lambda: bench.pg_backup("directory", jobs=args.jobs)),
        ]
    variants.append(("postgresql_db state=dump (.pgc)", bench.community))
    times = dict((name, []) for name, _f in variants)
    inner = dict((name, []) for name, _f in variants)
    through = dict((name, []) for name, _f in variants)
    sizes = {}
    bench.bare()  # warm the cache once
    for run in range(args.runs):
        for name, func in variants:  # interleaved, so drift hits every variant alike
            elapsed, archive_bytes, result = func()
            times[name].append(elapsed)
            sizes[name] = archive_bytes
            if result and result.get("backup"):
                inner[name].append(result["backup"]["duration_seconds"])
            if result and "_ansible_seconds" in result:
                through[name].append(result["_ansible_seconds"])
        print("%s: run %d/%d done" % (size, run + 1, args.runs), file=sys.stderr)

    floor = statistics.median(times["bare pg_dump -Fc"])
    print("\n== %s (%s, %.1f MB) ==" % (size, dbname, db_bytes / 1e6))
    header = ("variant", "min s", "median", "max s", "MB/s", "ratio", "archive", "notes")
    print("%-34s %7s %7s %7s %8s %7s %10s %s" % header)
    medians = {}
    for name, _f in variants:
        values = times[name]
        median = medians[name] = statistics.median(values)
        notes = []
        if inner[name]:
            notes.append("pg_dump inside the module: median %.2f s" % statistics.median(inner[name]))
        if through[name]:
            notes.append("through ansible -m: median %.2f s (%.1fx)" % (
                statistics.median(through[name]), statistics.median(through[name]) / floor))
        print("%-34s %7.3f %7.3f %7.3f %8.1f %6.2fx %8.2f MB %s" % (
            name, min(values), median, max(values), db_bytes / 1e6 / median, median / floor,
            sizes[name] / 1e6, "; ".join(notes)), flush=True)
    return medians


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default=",".join(SIZES),
                        help="comma-separated, of %s (default: all; 1gb takes minutes)" % ", ".join(SIZES))
    parser.add_argument("--scale", type=int, default=10, help="pgbench scale of the 165mb size")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--ansible", action="store_true", help="also time each module through `ansible -m`")
    parser.add_argument("--baseline", metavar="CHECKOUT",
                        help="another checkout of this repository (e.g. `git archive REV | tar -x -C /tmp/before`) whose "
                             "pg_backup runs too, interleaved, as '%s': before/after in one run" % BASELINE)
    args = parser.parse_args()
    if not 1 <= args.runs <= 30:
        parser.error("--runs must be between 1 and 30")
    if not 1 <= args.scale <= 100:
        parser.error("--scale must be between 1 and 100")
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown or not sizes:
        parser.error("--sizes takes a comma-separated list of %s, got %r" % (", ".join(SIZES), args.sizes))
    if args.baseline and not os.path.isfile(os.path.join(args.baseline, "plugins", "modules", "pg_backup.py")):
        parser.error("--baseline %s is not a checkout of this repository" % args.baseline)

    base = tempfile.mkdtemp(prefix="dbstack-bench-backup-")
    runas = servers.RunAs()
    node = servers.PostgresNode(base, "pgdata", runas, servers.private_dir(base, runas), PASSWORD)
    work = os.path.join(base, "out")
    os.makedirs(work)
    summary = []
    try:
        node.init_primary().start()
        version = node.psql("SHOW server_version")
        print("PostgreSQL %s on loopback; %d runs per variant, interleaved" % (version, args.runs))
        for size in sizes:
            dbname, db_bytes = load(node, size, args.scale)
            medians = measure(node, work, size, dbname, db_bytes, args)
            summary.append((size, db_bytes, medians))
            node.psql("DROP DATABASE %s" % dbname)  # the next size gets the disk and the cache
        print("\n== summary: median of %d, seconds (ratio to bare pg_dump) ==" % args.runs)
        columns = ["bare pg_dump", "pg_backup", "postgresql_db"] + (["pg_backup baseline"] if args.baseline else [])
        print("%-6s %9s  " % ("size", "db MB") + "".join("%-20s" % c for c in columns) + "pg_backup overhead")
        for size, db_bytes, medians in summary:
            floor = medians["bare pg_dump -Fc"]
            ours = medians["pg_backup custom"]
            cells = ["%.3f" % floor] + ["%.3f (%.2fx)" % (medians[k], medians[k] / floor) for k in (
                ["pg_backup custom", "postgresql_db state=dump (.pgc)"] + ([BASELINE] if args.baseline else []))]
            line = "%-6s %9.1f  " % (size, db_bytes / 1e6) + "".join("%-20s" % c for c in cells)
            line += "%+.0f ms" % ((ours - floor) * 1000)
            if args.baseline:
                line += " (baseline %+.0f ms)" % ((medians[BASELINE] - floor) * 1000)
            print(line)
        print("\nMB/s = database size / median; ratio = median / bare pg_dump's median; overhead = pg_backup "
              "custom's median - bare pg_dump's median.")
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
