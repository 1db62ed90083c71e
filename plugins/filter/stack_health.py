# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: stack_health
short_description: Judge the whole stack from what the health role read on each host
version_added: 0.2.0
description:
  - The decisions behind C(playbooks/health.yml) (the dbstack.ha.health role), one check per line, each C(ok),
    C(warn) or C(fail) with a detail and the runbook line that says what to do.
  - Who the PostgreSQL primary is comes from dbstack.ha.pg_current_primary, who the Redis master is from
    dbstack.ha.redis_current_master; this filter never decides either on its own.
  - 'Checks: C(host_reachable); C(postgres_up), C(postgres_primary) (exactly one), C(postgres_standby_streaming)
    and C(postgres_replication_lag) per standby, C(postgres_sync) (with synchronous replication configured, the
    primary has a synchronous standby; empty names after a switchover or failover relaxed them warn), C(postgres_slot)
    per replication slot (active, WAL retained);
    C(pgbouncer_up), C(pgbouncer_waiting) (clients waiting longer than the limit), C(pgbouncer_fd) (descriptors
    PgBouncer may need against its process limit); C(redis_up), C(redis_master) (one master), C(redis_replica)
    per replica (linked to that master), C(sentinel_agreement) per Sentinel; C(prometheus_up),
    C(prometheus_targets), C(prometheus_alerts); C(backup_age) and C(restore_test_age) per database;
    C(tls_expiry) per certificate; C(disk_space) per data and backup path.'
options:
  _input:
    description:
      - One entry per host, as the health role collects it - C(host), C(reachable), and per service what was read
        C(postgres) (registered C(postgresql_query) of the role's query), C(pgbouncer) (registered
        dbstack.ha.pgbouncer_info), C(redis) / C(sentinel) (registered C(community.general.redis_info)) with
        C(address), C(prometheus) (C(targets) and C(alerts), registered C(uri) results of the API), C(slot) (the
        replication slot name a standby uses), C(sync_mode) (the configured synchronous replication, C(none),
        C(first) or C(any)), and C(files) (the output of the role's read of disks, certificates
        and backup metrics, one C(kind value...) per line).
    type: list
    elements: dict
    required: true
  groups:
    description: Inventory names per role - C(postgres), C(pgbouncer), C(redis), C(sentinel), C(monitoring).
    type: dict
    required: true
  limits:
    description:
      - C(lag_bytes), C(slot_retained_bytes), C(pool_wait_seconds), C(backup_max_age_seconds),
        C(restore_test_max_age_seconds) (0 skips the check), C(cert_warn_days), C(cert_fail_days),
        C(disk_warn_percent), C(disk_fail_percent), C(alert_fail_severities) (list; other firing alerts warn),
        C(initial_primary), C(initial_master), C(quorum), C(master_name), C(runbook) (base URL or path of the
        runbook; each check links to C(#health-CHECK) in it).
    type: dict
    required: true
author: dbstack.ha contributors
"""

EXAMPLES = r"""
- name: Judge the stack
  ansible.builtin.set_fact:
    report: "{{ collected | dbstack.ha.stack_health(groups_by_role, limits) }}"
"""

RETURN = r"""
_value:
  description:
    - C(ok) (no check failed), C(checks) (list of C(check), C(target), C(status), C(detail), C(runbook)),
      C(failed) and C(warnings) (the checks with that status, one line each with the check, target, detail and runbook), C(counts)
      (per status), C(primary) and C(redis_master) (as decided), C(table) (the report as lines of text).
  type: dict
"""

import re

from ansible_collections.dbstack.ha.plugins.filter.pg_topology import pg_current_primary
from ansible_collections.dbstack.ha.plugins.filter.redis_topology import (
    redis_current_master,
    sentinel_master_address,
)

MIB = 1024.0 * 1024.0
DAY = 86400.0
METRIC = re.compile(r'^(?P<name>[a-z_]+)\{database="(?P<database>[^"]*)"\}\s+(?P<value>[0-9.eE+-]+)\s*$')
BACKUP_METRIC = "dbstack_backup_last_success_timestamp_seconds"
RESTORE_TEST_METRIC = "dbstack_restore_test_last_success_timestamp_seconds"


def parse_files(text):
    """The role's read of one host -> dict(now, disks, certs, metrics)."""
    out = dict(now=None, disks=[], certs=[], metrics=[], errors=[])
    for line in (text or "").splitlines():
        kind, _sep, rest = line.partition(" ")
        fields = rest.split()
        try:
            if kind == "now":
                out["now"] = float(fields[0])
            elif kind == "disk":
                # disk PATH SIZE USED AVAIL MOUNT
                out["disks"].append(dict(path=fields[0], size=int(fields[1]), used=int(fields[2]),
                                         avail=int(fields[3]), mount=fields[4]))
            elif kind == "cert":
                # cert PATH NOT_AFTER_EPOCH (or "unreadable")
                out["certs"].append(dict(path=fields[0], not_after=float(fields[1]) if fields[1] != "unreadable"
                                         else None))
            elif kind == "metric":
                match = METRIC.match(rest.strip())
                if match:
                    out["metrics"].append(dict(name=match.group("name"), database=match.group("database"),
                                               value=float(match.group("value"))))
            elif kind == "error":
                out["errors"].append(rest.strip())
        except (IndexError, ValueError):
            out["errors"].append("unreadable line: %s" % line)
    return out


def _answered(result, key):
    """Whether a registered result holds an answer (KEY). The role registers with failed_when: false, which turns
    'failed' off, so an answer is known by what it holds, not by that flag."""
    return isinstance(result, dict) and not result.get("failed") and not result.get("unreachable") \
        and not result.get("skipped") and result.get(key) is not None


def _error(result):
    if not isinstance(result, dict):
        return "not read"
    if result.get("skipped"):
        return "not read (skipped)"
    return str(result.get("msg") or "no answer").strip().splitlines()[0][:300]


def _duration(seconds):
    seconds = int(max(seconds, 0))
    if seconds >= DAY:
        return "%dd %dh" % (seconds // DAY, seconds % DAY // 3600)
    if seconds >= 3600:
        return "%dh %dm" % (seconds // 3600, seconds % 3600 // 60)
    if seconds >= 60:
        return "%dm %ds" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


class Report(object):
    def __init__(self, hosts, groups, limits):
        self.hosts = dict((h["host"], h) for h in hosts or [])
        self.groups = dict((k, [h for h in (v or []) if h in self.hosts]) for k, v in (groups or {}).items())
        self.limits = limits or {}
        self.checks = []
        self.primary = ""
        self.redis_master = ""
        self.runbook = str(self.limits.get("runbook") or "docs/operations.md")

    def add(self, check, target, status, detail):
        self.checks.append(dict(check=check, target=target, status=status, detail=detail,
                                runbook="%s#health-%s" % (self.runbook, check.replace("_", "-"))))

    def limit(self, name, default):
        value = self.limits.get(name)
        return default if value in (None, "") else value

    def group(self, name):
        return [h for h in self.groups.get(name, []) if self.hosts[h].get("reachable", True)]

    # -- hosts -------------------------------------------------------------------------------------------------
    def reachability(self):
        for name in sorted(self.hosts):
            host = self.hosts[name]
            if host.get("reachable", True):
                self.add("host_reachable", name, "ok", "answered")
            else:
                self.add("host_reachable", name, "fail", "did not answer: %s" % host.get("error", "unreachable"))

    # -- PostgreSQL --------------------------------------------------------------------------------------------
    def postgres(self):
        names = self.groups.get("postgres", [])
        if not names:
            return
        rows = {}
        states = {}
        for name in names:
            host = self.hosts[name]
            result = host.get("postgres")
            if host.get("reachable", True) and _answered(result, "query_result"):
                rows[name] = result["query_result"][0]
                states[name] = bool(rows[name].get("in_recovery"))
                self.add("postgres_up", name, "ok", "in recovery" if states[name] else "primary")
            else:
                states[name] = "unknown"
                self.add("postgres_up", name, "fail", "PostgreSQL did not answer: %s" % (
                    _error(result) if host.get("reachable", True) else "host unreachable"))
        decision = pg_current_primary(states, str(self.limit("initial_primary", "")))
        if decision["reason"] == "running":
            self.primary = decision["primary"]
            self.add("postgres_primary", "cluster", "ok", "%s is the one primary" % self.primary)
        else:
            self.add("postgres_primary", "cluster", "fail", decision["problem"] or decision["reason"])

        primary_row = rows.get(self.primary, {})
        replication = dict((r.get("application_name"), r) for r in primary_row.get("replication") or [])
        max_lag = int(self.limit("lag_bytes", 10 * 1024 * 1024))
        for name in names:
            if decision["states"].get(name) != "standby":
                continue
            slot = str(self.hosts[name].get("slot") or name)
            row = replication.get(slot)
            if not self.primary:
                self.add("postgres_standby_streaming", name, "fail", "no primary to stream from")
                continue
            if row is None:
                self.add("postgres_standby_streaming", name, "fail",
                         "not connected to the primary %s (no walsender with application_name %s)" % (
                             self.primary, slot))
                continue
            if row.get("state") != "streaming":
                self.add("postgres_standby_streaming", name, "fail", "walsender state is %s, not streaming" % (
                    row.get("state")))
            else:
                self.add("postgres_standby_streaming", name, "ok", "streaming from %s (%s)" % (
                    self.primary, row.get("sync_state")))
            lag = row.get("lag_bytes")
            if lag is None:
                self.add("postgres_replication_lag", name, "warn", "no replay position reported yet")
            else:
                lag = float(lag)
                self.add("postgres_replication_lag", name, "ok" if lag <= max_lag else "fail",
                         "%.1f MiB behind (limit %.1f MiB)%s" % (
                             lag / MIB, max_lag / MIB,
                             ", replay lag %ss" % row.get("replay_lag_seconds")
                             if row.get("replay_lag_seconds") is not None else ""))

        self.synchronous(primary_row, replication)

        max_retained = int(self.limit("slot_retained_bytes", 1024 * 1024 * 1024))
        for slot in primary_row.get("slots") or []:
            retained = float(slot.get("retained_bytes") or 0)
            target = "%s/%s" % (self.primary, slot.get("slot_name"))
            detail = "%s, retains %.1f MiB of WAL (limit %.1f MiB)%s" % (
                "active" if slot.get("active") else "INACTIVE", retained / MIB, max_retained / MIB,
                ", wal_status %s" % slot["wal_status"] if slot.get("wal_status") else "")
            if retained > max_retained or slot.get("wal_status") == "lost":
                self.add("postgres_slot", target, "fail", detail)
            elif not slot.get("active"):
                self.add("postgres_slot", target, "warn", detail)
            else:
                self.add("postgres_slot", target, "ok", detail)

    def synchronous(self, row, replication):
        """With FIRST/ANY N configured: the primary has a synchronous standby (else every commit hangs)."""
        if not self.primary:
            return
        mode = str(self.hosts[self.primary].get("sync_mode") or "none").lower()
        names = str(row.get("sync_names") or "").strip()
        if mode == "none" and not names:
            return
        sync = sorted(name for name, r in replication.items() if r.get("sync_state") in ("sync", "quorum"))
        if not names:
            self.add("postgres_sync", self.primary, "warn",
                     "synchronous replication (%s) is relaxed: synchronous_standby_names is empty (an ALTER SYSTEM "
                     "override left by a switchover or failover); commits are asynchronous until site.yml restores "
                     "it" % mode.upper())
        elif sync:
            self.add("postgres_sync", self.primary, "ok", "%s: %s" % (names, ", ".join(sync)))
        else:
            self.add("postgres_sync", self.primary, "fail",
                     "%s names no connected standby: every commit waits for one" % names)

    # -- PgBouncer ---------------------------------------------------------------------------------------------
    def pgbouncer(self):
        max_wait = float(self.limit("pool_wait_seconds", 5))
        for name in self.groups.get("pgbouncer", []):
            host = self.hosts[name]
            result = host.get("pgbouncer")
            if not (host.get("reachable", True) and _answered(result, "pools")):
                self.add("pgbouncer_up", name, "fail", "the admin console did not answer: %s" % (
                    _error(result) if host.get("reachable", True) else "host unreachable"))
                continue
            pools = result.get("pools") or {}
            clients = sum(p.get("cl_active", 0) + p.get("cl_waiting", 0) for p in pools.values())
            summary = "%s, %d pools, %d clients" % (result.get("version"), len(pools), clients)
            self.add("pgbouncer_up", name, "ok", summary)
            slow = sorted("%s: %d waiting, oldest %.1fs" % (key, p["cl_waiting"], p["maxwait_seconds"])
                          for key, p in pools.items() if p.get("cl_waiting") and p["maxwait_seconds"] >= max_wait)
            waiting = sum(p.get("cl_waiting", 0) for p in pools.values())
            if slow:
                self.add("pgbouncer_waiting", name, "fail", "clients wait longer than %gs: %s" % (
                    max_wait, "; ".join(slow)))
            else:
                self.add("pgbouncer_waiting", name, "ok", "%d clients waiting, none for %gs or more" % (
                    waiting, max_wait))
            expected, limit = result.get("expected_fd_use"), result.get("fd_limit")
            if not limit:
                self.add("pgbouncer_fd", name, "warn",
                         "the process's descriptor limit could not be read (expected use %s)" % expected)
            elif expected > limit:
                self.add("pgbouncer_fd", name, "fail", "may need %d descriptors, the process may open %d (%s open now)"
                         % (expected, limit, result.get("fd_open")))
            else:
                self.add("pgbouncer_fd", name, "ok", "may need %d of %d descriptors (%s open now)" % (
                    expected, limit, result.get("fd_open")))

    # -- Redis and Sentinel ------------------------------------------------------------------------------------
    def redis(self):
        names = self.groups.get("redis", [])
        if not names:
            return
        nodes = []
        for name in names:
            host = self.hosts[name]
            result = host.get("redis")
            running = host.get("reachable", True) and _answered(result, "info")
            info = result.get("info", {}) if running else {}
            nodes.append(dict(host=name, address=host.get("address") or name, port=int(host.get("port") or 6379),
                              bootstrapped=True, running=running, role=info.get("role", ""), info=info))
            if running:
                self.add("redis_up", name, "ok", "%s, Redis %s" % (info.get("role"), info.get("redis_version")))
            else:
                self.add("redis_up", name, "fail", "Redis did not answer: %s" % (
                    _error(result) if host.get("reachable", True) else "host unreachable"))
        sentinels = []
        for name in self.groups.get("sentinel", []):
            host = self.hosts[name]
            result = host.get("sentinel")
            answered = host.get("reachable", True) and _answered(result, "info")
            sentinels.append(dict(host=name, info=result.get("info", {}) if answered else {},
                                  answered=answered, error=_error(result)))
        decision = redis_current_master(nodes, sentinels, str(self.limit("initial_master", "")),
                                        int(self.limit("quorum", 2)), str(self.limit("master_name", "dbstack")))
        if decision["problems"]:
            self.add("redis_master", "redis", "fail", "; ".join(decision["problems"]))
        else:
            self.redis_master = decision["master"]
            self.add("redis_master", "redis", "ok", "%s (%s:%s), decided by the %s" % (
                decision["master"], decision["address"], decision["port"], decision["source"]))
            for node in nodes:
                if node["host"] == self.redis_master or not node["running"]:
                    continue
                info = node["info"]
                linked = "%s:%s" % (info.get("master_host"), info.get("master_port"))
                expected = "%s:%s" % (decision["address"], decision["port"])
                if node["role"] != "slave":
                    self.add("redis_replica", node["host"], "fail", "runs as %s, not as a replica of %s" % (
                        node["role"], self.redis_master))
                elif linked != expected or info.get("master_link_status") != "up":
                    self.add("redis_replica", node["host"], "fail", "replica of %s, link %s (expected %s)" % (
                        linked, info.get("master_link_status"), expected))
                else:
                    self.add("redis_replica", node["host"], "ok", "replica of %s, link up" % self.redis_master)

        master_name = str(self.limit("master_name", "dbstack"))
        expected = "%s:%s" % (decision["address"], decision["port"]) if decision["master"] else ""
        for sentinel in sentinels:
            if not sentinel["answered"]:
                self.add("sentinel_agreement", sentinel["host"], "fail", "the Sentinel did not answer: %s" % (
                    sentinel["error"]))
                continue
            address = sentinel_master_address(sentinel["info"], master_name)
            status = ""
            for key, value in sentinel["info"].items():
                if str(key).startswith("master") and isinstance(value, dict) and value.get("name") == master_name:
                    status = value.get("status", "")
            if not address:
                self.add("sentinel_agreement", sentinel["host"], "fail", "does not monitor %s" % master_name)
            elif address != expected:
                self.add("sentinel_agreement", sentinel["host"], "fail", "follows %s, the master is %s" % (
                    address, expected or "undecided"))
            elif status != "ok":
                self.add("sentinel_agreement", sentinel["host"], "fail", "follows %s, status %s" % (address, status))
            else:
                self.add("sentinel_agreement", sentinel["host"], "ok", "follows %s (%s)" % (
                    self.redis_master, address))

    # -- Prometheus --------------------------------------------------------------------------------------------
    def prometheus(self):
        fail_severities = [str(s) for s in self.limit("alert_fail_severities", ["critical"])]
        for name in self.groups.get("monitoring", []):
            host = self.hosts[name]
            prom = host.get("prometheus") or {}
            targets, alerts = prom.get("targets"), prom.get("alerts")
            if not (host.get("reachable", True) and _answered(targets, "json") and _answered(alerts, "json")):
                bad = targets if not _answered(targets, "json") else alerts
                self.add("prometheus_up", name, "fail", "the Prometheus API did not answer: %s" % (
                    _error(bad) if host.get("reachable", True) else "host unreachable"))
                continue
            active = ((targets.get("json") or {}).get("data") or {}).get("activeTargets") or []
            self.add("prometheus_up", name, "ok", "%d targets" % len(active))
            down = sorted("%s %s (%s)" % (t.get("labels", {}).get("job"), t.get("labels", {}).get("instance"),
                                          t.get("lastError") or t.get("health"))
                          for t in active if t.get("health") != "up")
            if down:
                self.add("prometheus_targets", name, "fail", "%d of %d targets down: %s" % (
                    len(down), len(active), "; ".join(down)))
            else:
                self.add("prometheus_targets", name, "ok", "all %d targets up" % len(active))
            firing = [a for a in ((alerts.get("json") or {}).get("data") or {}).get("alerts") or []
                      if a.get("state") == "firing"]
            if not firing:
                self.add("prometheus_alerts", name, "ok", "no alert firing")
                continue
            labels = [a.get("labels", {}) for a in firing]
            text = "; ".join(sorted("%s%s (%s)" % (
                l.get("alertname"), " " + l["instance"] if l.get("instance") else "", l.get("severity", "none"))
                for l in labels))
            severe = [l for l in labels if l.get("severity") in fail_severities]
            self.add("prometheus_alerts", name, "fail" if severe else "warn", "%d firing: %s" % (len(firing), text))

    # -- files: backups, certificates, disks -------------------------------------------------------------------
    def files(self):
        newest = {BACKUP_METRIC: {}, RESTORE_TEST_METRIC: {}}
        now = None
        for name in sorted(self.hosts):
            host = self.hosts[name]
            if not host.get("reachable", True) or host.get("files") is None:
                continue
            read = parse_files(host["files"])
            now = read["now"] or now
            for error in read["errors"]:
                self.add("host_read", name, "warn", error)
            for metric in read["metrics"]:
                if metric["name"] in newest:
                    seen = newest[metric["name"]]
                    if metric["value"] > seen.get(metric["database"], (0, ""))[0]:
                        seen[metric["database"]] = (metric["value"], name)
            self.certificates(name, read)
            self.disks(name, read)
        self.ages(newest, now)

    def certificates(self, name, read):
        warn_days = float(self.limit("cert_warn_days", 30))
        fail_days = float(self.limit("cert_fail_days", 7))
        for cert in read["certs"]:
            target = "%s:%s" % (name, cert["path"])
            if cert["not_after"] is None or read["now"] is None:
                self.add("tls_expiry", target, "fail", "the certificate could not be read")
                continue
            days = (cert["not_after"] - read["now"]) / DAY
            status = "fail" if days < fail_days else "warn" if days < warn_days else "ok"
            self.add("tls_expiry", target, status, "%s in %.0f days (warn under %g, fail under %g)" % (
                "expires" if days >= 0 else "EXPIRED", abs(days), warn_days, fail_days))

    def disks(self, name, read):
        warn = float(self.limit("disk_warn_percent", 80))
        fail = float(self.limit("disk_fail_percent", 90))
        for disk in read["disks"]:
            total = disk["used"] + disk["avail"]
            used = 100.0 * disk["used"] / total if total else 0.0
            status = "fail" if used >= fail else "warn" if used >= warn else "ok"
            self.add("disk_space", "%s:%s" % (name, disk["path"]), status, "%.0f%% used, %.1f GiB free on %s" % (
                used, disk["avail"] / (1024.0 ** 3), disk["mount"]))

    def ages(self, newest, now):
        databases = [str(d) for d in self.limit("databases", [])]
        for check, metric, limit_name, what in (
                ("backup_age", BACKUP_METRIC, "backup_max_age_seconds", "backup"),
                ("restore_test_age", RESTORE_TEST_METRIC, "restore_test_max_age_seconds", "restore test")):
            max_age = float(self.limit(limit_name, 0) or 0)
            if max_age <= 0:
                continue
            seen = newest[metric]
            for database in sorted(set(databases) | set(seen)):
                if database not in seen:
                    self.add(check, database, "fail", "no successful %s recorded on any PostgreSQL host" % what)
                    continue
                stamp, host = seen[database]
                age = (now or stamp) - stamp
                self.add(check, database, "ok" if age <= max_age else "fail", "last %s %s ago on %s (limit %s)" % (
                    what, _duration(age), host, _duration(max_age)))

    # -- the report --------------------------------------------------------------------------------------------
    def run(self):
        self.reachability()
        self.postgres()
        self.pgbouncer()
        self.redis()
        self.prometheus()
        self.files()
        counts = dict(ok=0, warn=0, fail=0)
        for check in self.checks:
            counts[check["status"]] += 1

        def lines(status):
            return ["%s %s: %s (runbook: %s)" % (c["check"], c["target"], c["detail"], c["runbook"])
                    for c in self.checks if c["status"] == status]

        return dict(ok=counts["fail"] == 0, counts=counts, checks=self.checks, failed=lines("fail"),
                    warnings=lines("warn"), primary=self.primary, redis_master=self.redis_master,
                    table=table(self.checks, counts))


def table(checks, counts):
    order = {"fail": 0, "warn": 1, "ok": 2}
    rows = [("STATUS", "CHECK", "TARGET", "DETAIL")] + [
        (c["status"].upper(), c["check"], c["target"], c["detail"])
        for c in sorted(checks, key=lambda c: (order[c["status"]], c["check"], c["target"]))]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    text = ["%-*s  %-*s  %-*s  %s" % (widths[0], r[0], widths[1], r[1], widths[2], r[2], r[3]) for r in rows]
    text.append("%d checks: %d ok, %d warn, %d fail" % (len(checks), counts["ok"], counts["warn"], counts["fail"]))
    return text


def stack_health(hosts, groups, limits):
    return Report(hosts, groups, limits).run()


class FilterModule(object):
    def filters(self):
        return {"stack_health": stack_health}
