# -*- coding: utf-8 -*-
"""The lab as the benchmarks, the load test and the lab checks reach it: one place for it all.

Containers are named LAB_NAME-HOST (make lab: dbstack-pg1, dbstack-pgb1, ...);
their addresses come from podman; secrets from .lab/credentials/ (written by
`make lab`, one file per secret); connection strings, pgbench runs and ad-hoc
runs of the collection's modules on a lab host are built here.

Scripts import it as `import lablib`: it lives in tests/, and benchmarks/ and
tests/load/ hold a relative symlink to it, so `python benchmarks/x.py` from the
repository root needs no sys.path change. The test suite imports it as
ansible_collections.dbstack.ha.tests.lablib.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
CREDENTIALS = os.path.join(REPO, ".lab", "credentials")
COLLECTIONS = os.path.join(REPO, ".build", "collections")
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
DEFAULT_LAB_NAME = os.environ.get("LAB_NAME", "dbstack")

PORTS = dict(postgres=5432, pgbouncer=6432, redis=6379, sentinel=26379, prometheus=9090)
# The lab's users and the credentials file of each (.lab/credentials/NAME).
POSTGRES_SUPERUSER = ("postgres", "postgres_superuser")
POSTGRES_APP = ("app", "postgres_app")
PGBOUNCER_ADMIN = ("pgbouncer_admin", "pgbouncer_admin")
REDIS_SECRET = "redis_password"
SENTINEL_SECRET = "sentinel_password"
SENTINEL_MASTER = "dbstack"
APP_DB = "appdb"
PG_SOCKET_DIR = "/var/run/postgresql"


def run(argv, **kwargs):
    """stdout of a command that must succeed."""
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, universal_newlines=True, **kwargs).stdout


def wait_for(predicate, timeout, step=0.5):
    """Call predicate every step seconds until it returns something true (returned), at most timeout seconds (None)."""
    import time  # pylint: disable=import-outside-toplevel
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


def container(lab_name, host):
    return "%s-%s" % (lab_name, host)


def podman_address(name):
    """The container's address on the lab network."""
    return run(["podman", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name]).strip()


def read_secret(path):
    """First word of a credentials file; SystemExit naming the file and the fix when it is missing."""
    if not os.path.exists(path):
        raise SystemExit("%s does not exist: the lab's credentials are written by `make lab`" % path)
    with open(path) as handle:
        words = handle.read().split()
    if not words:
        raise SystemExit("%s is empty: run `make lab` again to write the lab's credentials" % path)
    return words[0]


def conninfo(**params):
    """libpq keyword/value string; values quoted as libpq wants (spaces, quotes, backslashes)."""
    parts = []
    for key, value in params.items():
        if value is None:
            continue
        value = str(value)
        if value == "" or re.search(r"[\s'\\]", value):
            value = "'%s'" % value.replace("\\", "\\\\").replace("'", "\\'")
        parts.append("%s=%s" % (key, value))
    return " ".join(parts)


def pgpass_line(host, port, dbname, user, password):
    """One .pgpass line; ':' and '\\' escaped in every field."""
    fields = [str(f) for f in (host, port, dbname, user, password)]
    return ":".join(f.replace("\\", "\\\\").replace(":", "\\:") for f in fields) + "\n"


def write_pgpass(path, lines):
    """A 0600 pgpass file (libpq ignores one readable by others)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write("".join(lines))
    return path


def pg_tool(name):
    """A PostgreSQL client program: PG_BIN first, then PATH; None when missing."""
    path = os.path.join(PG_BIN, name)
    return path if os.path.exists(path) else shutil.which(name)


def raise_nofile():
    """For pgbench children: hundreds of clients need more than 1024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 8192), hard), hard))


def pgbench(pgbench_bin, env, args, host, port, user, db):
    """(returncode, output) of one pgbench run; the password comes from env (PGPASSFILE)."""
    argv = [pgbench_bin, "-h", host, "-p", str(port), "-U", user] + args + [db]
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          preexec_fn=raise_nofile, check=False)
    return proc.returncode, proc.stdout


_CONNECTION_ERROR = re.compile(r"connection to server .* failed|could not connect|server closed the connection|"
                               r"connection.*(?:refused|reset)")


def parse_pgbench(output):
    """pgbench's summary as numbers, with the count of connection errors (lines) and aborted clients."""
    def number(pattern, cast=float):
        match = re.search(pattern, output)
        return cast(match.group(1)) if match else None
    return dict(
        processed=number(r"number of transactions actually processed: (\d+)", int),
        failed=number(r"number of failed transactions: (\d+)", int),
        tps=number(r"tps = ([\d.]+)"),
        latency_ms=number(r"latency average = ([\d.]+) ms"),
        connection_ms=number(r"initial connection time = ([\d.]+) ms"),
        connection_errors=sum(1 for line in output.splitlines() if _CONNECTION_ERROR.search(line)),
        aborted=len(re.findall(r"aborted in command|Run was aborted", output)),
    )


def ansible_env(**extra):
    """Environment for ansible runs against this checkout as dbstack.ha (make link)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS)
    env.update(extra)
    return env


def module_result(stdout, host):
    """The host's result from the json stdout callback of an ad-hoc run; None when there is none."""
    try:
        return json.loads(stdout)["plays"][0]["tasks"][0]["hosts"][host]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def templated_args(args, var="module_args"):
    """Module arguments as templates of an extra variable, so no value (a password) is on a command line."""
    return json.dumps(dict((key, "{{ %s.%s }}" % (var, key)) for key in sorted(args)))


def loopback_servers():
    """tests/integration/servers.py (real PostgreSQL/PgBouncer/Redis on loopback), for benchmarks that need no lab."""
    if COLLECTIONS not in sys.path:
        if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "dbstack", "ha")):
            raise SystemExit("%s is missing: run `make link` first" % COLLECTIONS)
        sys.path.insert(0, COLLECTIONS)
    from ansible_collections.dbstack.ha.tests.integration import servers  # pylint: disable=import-outside-toplevel
    return servers


class Lab(object):
    """One lab (containers LAB_NAME-HOST): addresses, secrets, connection strings, module runs."""

    def __init__(self, name=DEFAULT_LAB_NAME, credentials=CREDENTIALS):
        self.name = name
        self.network = name  # lab/up.yml names the podman network after the lab
        self.credentials = credentials
        self._addresses = {}
        self._secrets = {}

    def container(self, host):
        return container(self.name, host)

    def address(self, host):
        if host not in self._addresses:
            self._addresses[host] = podman_address(self.container(host))
        return self._addresses[host]

    def init_pid(self, host):
        """The host's container's init process as the machine sees it (SIGKILL it to crash the host at once)."""
        return int(run(["podman", "inspect", "-f", "{{.State.Pid}}", self.container(host)]).strip())

    def running(self, host):
        """Whether the host's container is running."""
        proc = subprocess.run(["podman", "inspect", "-f", "{{.State.Running}}", self.container(host)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True, check=False)
        return proc.stdout.strip() == "true"

    def secret(self, name):
        if name not in self._secrets:
            self._secrets[name] = read_secret(os.path.join(self.credentials, name))
        return self._secrets[name]

    def postgres_dsn(self, host, user=POSTGRES_SUPERUSER, dbname="postgres", port=PORTS["postgres"], **extra):
        """Connection string to PostgreSQL (or, with port 6432, PgBouncer) on a lab host, TLS required."""
        name, secret = user
        params = dict(host=self.address(host), port=port, user=name, dbname=dbname, sslmode="require",
                      connect_timeout=5, password=self.secret(secret))
        params.update(extra)
        return conninfo(**params)

    def pgbouncer_dsn(self, host="pgb1", user=POSTGRES_APP, dbname=APP_DB, **extra):
        return self.postgres_dsn(host, user=user, dbname=dbname, port=PORTS["pgbouncer"], **extra)

    def pgbouncer_admin_args(self):
        """pgbouncer_reload's connection options on a PgBouncer host (its Unix socket)."""
        name, secret = PGBOUNCER_ADMIN
        return dict(login_unix_socket=PG_SOCKET_DIR, login_user=name, login_password=self.secret(secret))

    def redis_kwargs(self, host, **extra):
        """redis.Redis(**...) for the Redis server on a lab host."""
        kwargs = dict(host=self.address(host), port=PORTS["redis"], password=self.secret(REDIS_SECRET))
        kwargs.update(extra)
        return kwargs

    def sentinel_kwargs(self, host, **extra):
        """redis.Redis(**...) for the Sentinel on a lab host."""
        kwargs = dict(host=self.address(host), port=PORTS["sentinel"], password=self.secret(SENTINEL_SECRET))
        kwargs.update(extra)
        return kwargs

    def prometheus_url(self, host="mon1"):
        return "http://%s:%d" % (self.address(host), PORTS["prometheus"])

    def primary(self, hosts, connect_timeout=5):
        """The first of hosts whose PostgreSQL answers and is not in recovery, else None."""
        import psycopg  # pylint: disable=import-outside-toplevel
        for host in hosts:
            try:
                with psycopg.connect(self.postgres_dsn(host, connect_timeout=connect_timeout), autocommit=True) as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        return host
            except psycopg.Error:
                pass
        return None

    def playbook(self, path, *extra):
        """Run ansible-playbook against this lab: (seconds, return code, output)."""
        import time  # pylint: disable=import-outside-toplevel
        start = time.monotonic()
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
                               os.path.join(REPO, "inventory", "lab"), path, "-e", "lab_name=%s" % self.name]
                              + list(extra), env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, check=False)
        return time.monotonic() - start, proc.returncode, proc.stdout

    def exec_(self, host, script, user="root"):
        """Run a bash script in a lab container."""
        return run(["podman", "exec", "--user", user, self.container(host), "bash", "-ec", script])

    def module(self, name, args, host, become_user=None):
        """Run a dbstack.ha module on a lab host (ad hoc, become) and return its result dict.

        The arguments travel in a 0600 extra-vars file, not on the command line.
        """
        workdir = tempfile.mkdtemp(prefix="dbstack-lab-module-")
        try:
            extra = os.path.join(workdir, "args.json")
            with os.fdopen(os.open(extra, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
                json.dump(dict(module_args=args, lab_name=self.name), handle)
            argv = [os.path.join(os.path.dirname(sys.executable), "ansible"), "-i",
                    os.path.join(REPO, "inventory", "lab"), host, "-e", "@" + extra, "-b"]
            if become_user:
                argv += ["--become-user", become_user]
            argv += ["-m", name, "-a", templated_args(args)]
            out = subprocess.run(argv, env=ansible_env(ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                                                       ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json"),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        result = module_result(out.stdout, host)
        if result is None:
            return dict(failed=True, msg=(out.stdout + out.stderr)[-2000:])
        return result
