# -*- coding: utf-8 -*-
"""Real PostgreSQL, PgBouncer, Redis and Sentinel servers on loopback for tests.

Each server runs from Debian's binaries in a private temporary directory, on
free ports of 127.0.0.1, with scram-sha-256 / requirepass auth and TLS from a
throw-away CA. Nothing is left running or listening after the session.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port, timeout=30.0, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with %s: %s" % (proc.returncode, _tail(log)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("port %d did not open in %.0f s: %s" % (port, timeout, _tail(log)))


def _tail(path):
    if path and os.path.exists(path):
        with open(path) as handle:
            return handle.read()[-2000:]
    return ""


class RunAs(object):
    """Servers refuse to run as root: run them as a service account then."""

    def __init__(self, user="postgres"):
        self.is_root = os.geteuid() == 0
        self.user = user if self.is_root else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            self.uid, self.gid = entry.pw_uid, entry.pw_gid

    def chown(self, path):
        if self.user:
            os.chown(path, self.uid, self.gid)

    def popen_kwargs(self):
        """Drop privileges in the child itself, so signals reach the server."""
        if not self.user:
            return {}
        return dict(user=self.uid, group=self.gid, extra_groups=[])


def make_pki(directory, names=("localhost",), ips=("127.0.0.1",), ca_name=u"dbstack test CA"):
    """A CA and a server certificate it signed; returns file paths."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def key_pem(key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = dict(ca=os.path.join(directory, "ca.crt"), cert=os.path.join(directory, "server.crt"),
                 key=os.path.join(directory, "server.key"))
    with open(paths["ca"], "wb") as handle:
        handle.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["cert"], "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["key"], "wb") as handle:
        handle.write(key_pem(key))
    os.chmod(paths["key"], 0o600)
    return paths


def private_dir(base, runas):
    """Make BASE usable by the servers' account and put a throw-away CA and certificate in it."""
    os.chmod(base, 0o755)
    runas.chown(base)
    pki = make_pki(base)
    for path in pki.values():
        runas.chown(path)
    return pki


@contextlib.contextmanager
def lone_primary(prefix, password, name="pgdata"):
    """A started PostgreSQL primary in its own temporary directory (scram, TLS); stopped and removed after."""
    base = tempfile.mkdtemp(prefix=prefix)
    runas = RunAs()
    node = PostgresNode(base, name, runas, private_dir(base, runas), password)
    try:
        yield node.init_primary().start()
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)


class PostgresNode(object):
    """One PostgreSQL server: a fresh primary (initdb) or a streaming standby (pg_basebackup)."""

    def __init__(self, base, name, runas, pki, superuser_password, socket_dir=None):
        self.base = base
        self.name = name
        self.runas = runas
        self.pki = pki
        self.password = superuser_password
        self.port = free_port()
        self.data = os.path.join(base, name)
        self.socket_dir = socket_dir or base
        self.log = os.path.join(base, name + ".log")
        self.proc = None
        self._log_handle = None
        self.pgpass = os.path.join(base, name + ".pgpass")
        with open(self.pgpass, "w") as handle:
            handle.write("*:*:*:postgres:%s\n*:*:replication:postgres:%s\n" % (self.password, self.password))
        os.chmod(self.pgpass, 0o600)
        runas.chown(self.pgpass)

    def _run(self, argv, **kwargs):
        env = dict(os.environ, PGPASSFILE=self.pgpass)
        return subprocess.run(argv, check=True, cwd=self.base, env=env, **dict(self.runas.popen_kwargs(), **kwargs))

    def init_primary(self):
        pwfile = os.path.join(self.base, self.name + ".pw")
        with open(pwfile, "w") as handle:
            handle.write(self.password + "\n")
        self.runas.chown(pwfile)
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "postgres", "--pwfile", pwfile,
                   "-A", "scram-sha-256", "--no-sync", "-E", "UTF8", "--data-checksums"], stdout=subprocess.DEVNULL)
        os.unlink(pwfile)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf:
            conf.write("\n".join([
                "listen_addresses = '127.0.0.1'",
                "unix_socket_directories = '%s'" % self.socket_dir,
                "password_encryption = 'scram-sha-256'",
                "ssl = on",
                "ssl_cert_file = '%s'" % self.pki["cert"],
                "ssl_key_file = '%s'" % self.pki["key"],
                "fsync = off",
                "max_connections = 50",
                "wal_level = replica",
                "max_wal_senders = 10",
                "hot_standby = on",
                ""]))
        return self

    def clone_from(self, primary, slot=None):
        """pg_basebackup -R from a running primary: a streaming standby."""
        argv = [os.path.join(PG_BIN, "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                "-D", self.data, "-R", "-X", "stream", "-c", "fast", "--no-sync"]
        if slot:
            argv += ["-C", "-S", slot]
        self._run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def start(self, timeout=30.0):
        self._log_handle = open(self.log, "ab")
        # -p overrides the port a clone copied from its primary.
        self.proc = subprocess.Popen([os.path.join(PG_BIN, "postgres"), "-D", self.data, "-p", str(self.port)],
                                     stdout=self._log_handle, stderr=subprocess.STDOUT, cwd=self.base,
                                     **self.runas.popen_kwargs())
        wait_port(self.port, timeout=timeout, proc=self.proc, log=self.log)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.psql("SELECT 1")
                return self
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self):
        """Fast shutdown (SIGINT); SIGTERM would wait for clients to leave."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log_handle:
            self._log_handle.close()
            self._log_handle = None

    def psql(self, sql, dbname="postgres"):
        return self._run([os.path.join(PG_BIN, "psql"), "-X", "-qAt", "-h", self.socket_dir, "-p", str(self.port),
                          "-U", "postgres", "-d", dbname, "-c", sql],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout.decode().strip()

    def wait_streaming(self, primary, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if primary.psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") != "0":
                return
            time.sleep(0.1)
        raise RuntimeError("standby %s did not start streaming" % self.name)


class Servers(object):
    """Start and stop the whole set; attributes describe how to reach each."""

    pg_password = "pg-Admin-Pw-1"
    app_password = "app-Pw-2"
    admin_password = "bouncer-Admin-Pw-3"
    redis_password = "redis-Pw-4"
    redis_app_password = "redis-App-Pw-5"
    sentinel_password = "sentinel-Pw-6"

    def __init__(self, base):
        self.base = base
        self.runas = RunAs()
        self.procs = []
        self.pki = private_dir(base, self.runas)
        self.pg = None
        self.pg_port, self.pgb_port = None, free_port()
        self.redis_port, self.redis_tls_port, self.sentinel_port = free_port(), free_port(), free_port()
        self.socket_dir = base

    # -- helpers ---------------------------------------------------------
    def _write(self, name, text, mode=0o600):
        path = os.path.join(self.base, name)
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, mode)
        self.runas.chown(path)
        return path

    def _spawn(self, argv, log_name, stop_signal=signal.SIGTERM):
        log = os.path.join(self.base, log_name)
        handle = open(log, "ab")
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, cwd=self.base,
                                **self.runas.popen_kwargs())
        self.procs.append((proc, handle, stop_signal))
        return proc, log

    def psql(self, sql, dbname="postgres"):
        return self.pg.psql(sql, dbname=dbname)

    # -- servers ---------------------------------------------------------
    def start_postgres(self):
        self.pg = PostgresNode(self.base, "pgdata", self.runas, self.pki, self.pg_password, self.socket_dir)
        self.pg.init_primary().start()
        self.pg_port = self.pg.port
        self.psql("CREATE ROLE app LOGIN PASSWORD '%s'" % self.app_password)
        self.psql("CREATE DATABASE appdb OWNER app")

    def start_pgbouncer(self):
        verifier = self.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
        userlist = self._write("userlist.txt", '"app" "%s"\n"pgbadmin" "%s"\n' % (verifier, self.admin_password), 0o640)
        ini = self._write("pgbouncer.ini", "\n".join([
            "[databases]",
            "appdb = host=127.0.0.1 port=%d dbname=appdb" % self.pg_port,
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            "listen_port = %d" % self.pgb_port,
            "unix_socket_dir = %s" % self.socket_dir,
            "auth_type = scram-sha-256",
            "auth_file = %s" % userlist,
            "admin_users = pgbadmin",
            "pool_mode = transaction",
            "client_tls_sslmode = allow",
            "client_tls_cert_file = %s" % self.pki["cert"],
            "client_tls_key_file = %s" % self.pki["key"],
            "server_tls_sslmode = require",
            "logfile = %s" % os.path.join(self.base, "pgbouncer.log"),
            "pidfile = %s" % os.path.join(self.base, "pgbouncer.pid"),
            ""]), 0o640)
        proc, log = self._spawn(["pgbouncer", ini], "pgbouncer.out")
        wait_port(self.pgb_port, proc=proc, log=log)

    def start_redis(self):
        conf = self._write("redis.conf", "\n".join([
            "bind 127.0.0.1",
            "port %d" % self.redis_port,
            "tls-port %d" % self.redis_tls_port,
            "tls-cert-file %s" % self.pki["cert"],
            "tls-key-file %s" % self.pki["key"],
            "tls-ca-cert-file %s" % self.pki["ca"],
            "tls-auth-clients no",
            "requirepass %s" % self.redis_password,
            "user app on >%s ~* &* +@all" % self.redis_app_password,
            "dir %s" % self.base,
            "save \"\"",
            "appendonly no",
            "daemonize no",
            ""]))
        proc, log = self._spawn(["redis-server", conf], "redis.log")
        wait_port(self.redis_port, proc=proc, log=log)
        wait_port(self.redis_tls_port, proc=proc, log=log)

    def start_sentinel(self):
        conf = self._write("sentinel.conf", "\n".join([
            "bind 127.0.0.1",
            "port %d" % self.sentinel_port,
            "dir %s" % self.base,
            "requirepass %s" % self.sentinel_password,
            "sentinel monitor mymaster 127.0.0.1 %d 1" % self.redis_port,
            "sentinel auth-pass mymaster %s" % self.redis_password,
            "sentinel down-after-milliseconds mymaster 5000",
            ""]))
        proc, log = self._spawn(["redis-sentinel", conf], "sentinel.log")
        wait_port(self.sentinel_port, proc=proc, log=log)

    def start(self):
        missing = [tool for tool in (os.path.join(PG_BIN, "postgres"), "pgbouncer", "redis-server", "redis-sentinel")
                   if not shutil.which(tool)]
        if missing:
            raise RuntimeError("integration tests need %s: run `make test-deps`" % ", ".join(missing))
        self.start_postgres()
        self.start_pgbouncer()
        self.start_redis()
        self.start_sentinel()
        return self

    def stop(self):
        if self.pg is not None:
            self.pg.stop()
        for proc, handle, stop_signal in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(stop_signal)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            handle.close()
        self.procs = []
