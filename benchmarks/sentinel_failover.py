"""Redis Sentinel failover drill against the lab (make lab first).

A Sentinel-aware client (redis-py) writes numbered keys to the master in a
bounded loop; the master's container is then frozen (`podman pause`, a host that
hangs or drops off the network; default) or its Redis stopped (`--fault stop`).
Two clients write at once: redis-py's own Sentinel client, and a failover-aware
one that asks every Sentinel for the master after an error and follows the
majority. Prints, per run:
  elected   fault -> the Sentinels name a new master (polled every 20 ms)
  writes    fault -> each client's first acknowledged write after its last failure
  lost      writes a client saw acknowledged that the new master does not have
  failed    write attempts that errored during the outage
then brings the old master back and waits until it is a replica of the new one
and no Sentinel is in TILT mode (a frozen Sentinel tilts for 30 s after it thaws);
the next run fails over the other way. Traffic only goes to the lab's addresses.

  python benchmarks/sentinel_failover.py --runs 3 [--lab-name dbstack] [--fault pause|stop]

Exit status: 0 when every run had a new master and the failover-aware client
wrote again within --budget seconds (default 20, the field's budget), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

import lablib  # tests/lablib.py (this directory holds a symlink to it)

MASTER_NAME = lablib.SENTINEL_MASTER
REDIS_HOSTS = ("redis1", "redis2")
SENTINEL_HOSTS = ("redis1", "redis2", "mon1")
sh = lablib.run


class Lab:
    def __init__(self, lab_name):
        self.base = lab = lablib.Lab(lab_name)
        self.containers = dict((h, lab.container(h)) for h in set(REDIS_HOSTS + SENTINEL_HOSTS))
        self.addresses = dict((h, lab.address(h)) for h in self.containers)
        self.redis_password = lab.secret(lablib.REDIS_SECRET)
        self.sentinel_password = lab.secret(lablib.SENTINEL_SECRET)
        self.sentinels = [(self.addresses[h], lablib.PORTS["sentinel"]) for h in SENTINEL_HOSTS]

    def host_of(self, ip):
        return next(h for h, a in self.addresses.items() if a == ip)

    def sentinel_client(self, host):
        return redis.Redis(**self.base.sentinel_kwargs(host, socket_timeout=0.3, socket_connect_timeout=0.3,
                                                       decode_responses=True))

    def node(self, host):
        return redis.Redis(**self.base.redis_kwargs(host, socket_timeout=1, socket_connect_timeout=1,
                                                    decode_responses=True))

    def masters_seen(self, hosts=SENTINEL_HOSTS):
        seen = {}
        for host in hosts:
            try:
                ip, _port = self.sentinel_client(host).sentinel_get_master_addr_by_name(MASTER_NAME)
                seen[host] = ip
            except (redis.exceptions.RedisError, TypeError):
                seen[host] = None
        return seen

    def tilted(self):
        """Sentinels in TILT mode (30 s after a pause or a clock jump; they do not act then)."""
        tilted = []
        for host in SENTINEL_HOSTS:
            try:
                if int(self.sentinel_client(host).info("sentinel").get("sentinel_tilt", 0)):
                    tilted.append(host)
            except redis.exceptions.RedisError:
                tilted.append(host)
        return tilted

    def settled(self):
        """(master host, True) when every Sentinel names the same running master, none is in TILT mode,
        and the other node replicates."""
        if self.tilted():
            return None, False
        seen = set(self.masters_seen().values())
        if len(seen) != 1 or None in seen:
            return None, False
        master = self.host_of(seen.pop())
        try:
            if self.node(master).execute_command("ROLE")[0] != "master":
                return master, False
            for other in REDIS_HOSTS:
                if other != master:
                    role = self.node(other).execute_command("ROLE")
                    if role[0] != "slave" or role[1] != self.addresses[master] or role[3] != "connected":
                        return master, False
        except redis.exceptions.RedisError:
            return master, False
        return master, True

    def wait_settled(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            master, ok = self.settled()
            if ok:
                return master
            time.sleep(0.5)
        raise SystemExit("the lab did not settle (one master, replicas connected, Sentinels agreeing) in %d s" % timeout)


class Writer(threading.Thread):
    """Writes <prefix><n> keys to the master until told to stop (or the deadline), counting every failure.

    kind "redis-py": redis-py's own Sentinel client (master_for), internal retries off.
    kind "majority": on any error, ask every Sentinel (SENTINEL GET-MASTER-ADDR-BY-NAME, 200 ms timeout) and
    reconnect to the address most of them name -- what a failover-aware client does.
    """

    def __init__(self, lab, prefix, deadline, kind):
        super().__init__(daemon=True)
        self.lab, self.prefix, self.deadline, self.kind = lab, prefix, deadline, kind
        if kind == "redis-py":
            finder = Sentinel(lab.sentinels, sentinel_kwargs=dict(password=lab.sentinel_password, socket_timeout=0.3),
                              socket_timeout=0.5, socket_connect_timeout=0.5)
            self.master = finder.master_for(MASTER_NAME, password=lab.redis_password, decode_responses=True,
                                            retry=Retry(NoBackoff(), 0))
        else:
            self.master = self.discover()
        self.stop = threading.Event()
        self.acked = []          # (n, time acknowledged)
        self.failures = []       # time of each failed attempt

    def discover(self):
        votes = {}
        for host in SENTINEL_HOSTS:
            try:
                client = redis.Redis(**self.lab.base.sentinel_kwargs(host, socket_timeout=0.2, socket_connect_timeout=0.2,
                                                                     retry=Retry(NoBackoff(), 0)))
                ip, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                votes[(ip, int(port))] = votes.get((ip, int(port)), 0) + 1
            except (redis.exceptions.RedisError, OSError, TypeError, ValueError):
                continue
        if not votes:
            return None
        (ip, port), _count = max(votes.items(), key=lambda item: item[1])
        return redis.Redis(host=ip, port=port, password=self.lab.redis_password, socket_timeout=0.5,
                           socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))

    def run(self):
        n = 0
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            n += 1
            began = time.monotonic()
            try:
                if self.master is None:
                    raise redis.exceptions.ConnectionError("no Sentinel answered")
                self.master.set(self.prefix + str(n), n)
                self.acked.append((n, time.monotonic()))
                time.sleep(0.005)
            except (redis.exceptions.RedisError, OSError) as exc:
                self.failures.append(time.monotonic())
                if os.environ.get("DRILL_DEBUG"):
                    print("  %s: attempt %d failed after %.2f s: %s: %s" % (
                        self.kind, n, time.monotonic() - began, type(exc).__name__, exc))
                time.sleep(0.01)
                if self.kind == "majority":
                    self.master = self.discover()

    def resumed_after(self, t_fault):
        """Seconds from the fault to the first acknowledged write after the last failure (None if none)."""
        failed_after = [t for t in self.failures if t > t_fault]
        if not failed_after:
            return None
        after = [t for _n, t in self.acked if t > failed_after[-1]]
        return (after[0] - t_fault) if after else None


def drill(lab, run, fault, timeout):
    old = lab.wait_settled()
    container = lab.containers[old]
    deadline = time.monotonic() + timeout + 30
    writers = [Writer(lab, "w:%d:%s:" % (run, kind), deadline, kind) for kind in ("majority", "redis-py")]
    for writer in writers:
        writer.start()
    time.sleep(2.0)
    if not all(writer.acked for writer in writers):
        for writer in writers:
            writer.stop.set()
        raise SystemExit("the clients could not write before the fault")
    t_fault = time.monotonic()
    if fault == "pause":
        sh(["podman", "pause", container])
    else:
        sh(["podman", "exec", container, "systemctl", "stop", "redis-server"])
    others = tuple(h for h in SENTINEL_HOSTS if not (fault == "pause" and h == old))
    elected = None
    deadline = t_fault + timeout
    while time.monotonic() < deadline:
        seen = [ip for ip in lab.masters_seen(others).values() if ip]
        if seen and all(ip != lab.addresses[old] for ip in seen):
            elected = time.monotonic() - t_fault
            break
        time.sleep(0.02)
    while time.monotonic() < deadline and not all(w.resumed_after(t_fault) for w in writers):
        time.sleep(0.05)
    time.sleep(1.0)
    for writer in writers:
        writer.stop.set()
        writer.join(5)

    # bring the old master back: Sentinel turns it into a replica of the new one
    if fault == "pause":
        sh(["podman", "unpause", container])
    else:
        sh(["podman", "exec", container, "systemctl", "start", "redis-server"])
    new = lab.wait_settled()

    client = lab.node(new)
    result = dict(old=old, new=new, elected=elected)
    for writer in writers:
        acked = [n for n, _t in writer.acked]
        present = set()
        for first in range(0, len(acked), 500):
            chunk = acked[first:first + 500]
            pipe = client.pipeline(transaction=False)
            for n in chunk:
                pipe.exists(writer.prefix + str(n))
            present.update(n for n, hit in zip(chunk, pipe.execute()) if hit)
        for first in range(0, len(acked), 1000):  # leave no drill data behind
            client.delete(*[writer.prefix + str(n) for n in acked[first:first + 1000]])
        result[writer.kind] = dict(resumed=writer.resumed_after(t_fault), acked=len(acked),
                                   lost=len(acked) - len(present),
                                   failed=len([t for t in writer.failures if t > t_fault]))
    return result


def seconds(value):
    return "%.2f s" % value if value is not None else "NO"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab-name", default="dbstack")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fault", choices=["pause", "stop"], default="pause")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up on a run after this many seconds")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds allowed to writes again (exit 1 above)")
    args = parser.parse_args()

    lab = Lab(args.lab_name)
    sentinel = lab.sentinel_client(SENTINEL_HOSTS[0]).sentinel_master(MASTER_NAME)
    print("Sentinel failover drill: %d runs, fault=%s, down-after %s ms, quorum %s, %d Sentinels"
          % (args.runs, args.fault, sentinel["down-after-milliseconds"], sentinel["quorum"], len(SENTINEL_HOSTS)))
    results = []
    for run in range(1, args.runs + 1):
        res = drill(lab, run, args.fault, args.timeout)
        results.append(res)
        print("run %d: %s -> %s  new master elected %s" % (run, res["old"], res["new"], seconds(res["elected"])))
        for kind in ("majority", "redis-py"):
            item = res[kind]
            print("    %-9s client writes again %s  acknowledged %d  lost %d  failed attempts %d" % (
                kind, seconds(item["resumed"]), item["acked"], item["lost"], item["failed"]))
        sys.stdout.flush()
    print()
    rows = [("new master elected", [r["elected"] for r in results])]
    for kind in ("majority", "redis-py"):
        rows.append(("%s writes again" % kind, [r[kind]["resumed"] for r in results]))
    for label, values in rows:
        if None in values:
            print("%-24s did not happen in %d of %d runs" % (label, values.count(None), len(values)))
            continue
        values = sorted(values)
        print("%-24s min %.2f s  median %.2f s  max %.2f s" % (label, values[0], statistics.median(values), values[-1]))
    for kind in ("majority", "redis-py"):
        print("%-24s %d of %d acknowledged" % ("%s writes lost" % kind, sum(r[kind]["lost"] for r in results),
                                               sum(r[kind]["acked"] for r in results)))
    majority = [r["majority"]["resumed"] for r in results]
    good = None not in majority and all(r["elected"] is not None for r in results) and max(majority) <= args.budget
    print("result: %s (failover-aware client writing again within %.0f s in every run)"
          % ("PASS" if good else "FAIL", args.budget))
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
