"""The lab's monitoring, end to end: every target up, the rules loaded, and a fault drill.

1. Every target in Prometheus' /api/v1/targets is `up` (none excluded; waits
   up to --wait seconds for the first scrapes after a converge), and every job
   the role generates (prometheus, alertmanager, node, postgres, pgbouncer,
   redis, sentinel) has at least one target.
2. /api/v1/rules has at least --min-rules alerting rules, all healthy.
3. Fault drill: `systemctl stop pgbouncer` on the lab's pgb1, then poll
   /api/v1/alerts until PgBouncerDown is pending and then firing (bounded by
   --drill-timeout), print both times from the fault, and start PgBouncer
   again (always, also on failure or Ctrl-C); wait until it is resolved.

Exit codes: 0 pass, 1 a check failed, 2 Prometheus unreachable.

    .venv/bin/python tests/monitoring_verify.py --lab-name dbstack
    .venv/bin/python tests/monitoring_verify.py --prometheus http://10.89.0.19:9090 --no-drill
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import lablib  # tests/lablib.py, next to this script

JOBS = ["prometheus", "alertmanager", "node", "postgres", "pgbouncer", "redis", "sentinel"]


def api(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError("%s: %s" % (path, body))
    return body["data"]


def check_targets(base, wait):
    deadline = time.monotonic() + wait
    while True:
        targets = api(base, "/api/v1/targets?state=active")["activeTargets"]
        down = [t for t in targets if t["health"] != "up"]
        jobs = sorted({t["labels"]["job"] for t in targets})
        missing = [j for j in JOBS if j not in jobs]
        if (not down and not missing) or time.monotonic() > deadline:
            break
        time.sleep(2)
    print("targets: %d, up: %d, jobs: %s" % (len(targets), len(targets) - len(down), ", ".join(jobs)))
    for t in down:
        print("  DOWN %s %s: %s" % (t["labels"]["job"], t["labels"]["instance"], t.get("lastError", "")))
    if missing:
        print("  no target for job(s): %s" % ", ".join(missing))
    return not down and not missing


def check_rules(base, min_rules):
    groups = api(base, "/api/v1/rules?type=alert")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    bad = [r["name"] for r in rules if r.get("health") not in ("ok", "unknown")]
    print("alerting rules loaded: %d in %d groups%s" % (len(rules), len(groups),
                                                        (", unhealthy: " + ", ".join(bad)) if bad else ""))
    return len(rules) >= min_rules and not bad


def alert_state(base, name, instance):
    for alert in api(base, "/api/v1/alerts")["alerts"]:
        if alert["labels"].get("alertname") == name and alert["labels"].get("instance") == instance:
            return alert["state"]
    return None


def drill(base, container, instance, timeout):
    def systemctl(action):
        subprocess.run(["podman", "exec", container, "systemctl", action, "pgbouncer"], check=True)

    print("drill: stopping PgBouncer on %s" % instance)
    pending = firing = None
    t0 = time.monotonic()
    systemctl("stop")
    try:
        while time.monotonic() - t0 < timeout:
            state = alert_state(base, "PgBouncerDown", instance)
            now = time.monotonic() - t0
            if state in ("pending", "firing") and pending is None:
                pending = now
                print("  PgBouncerDown pending after %.1f s" % pending)
            if state == "firing":
                firing = now
                print("  PgBouncerDown firing after %.1f s" % firing)
                break
            time.sleep(0.5)
    finally:
        systemctl("start")
        print("drill: PgBouncer started again")
    if firing is None:
        print("  PgBouncerDown did not fire within %d s (pending: %s)" % (timeout, pending))
        return False
    t1 = time.monotonic()
    while time.monotonic() - t1 < timeout:
        if alert_state(base, "PgBouncerDown", instance) is None:
            print("  PgBouncerDown resolved %.1f s after the start" % (time.monotonic() - t1))
            return True
        time.sleep(1)
    print("  PgBouncerDown still active %d s after PgBouncer started" % timeout)
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab-name", default="dbstack")
    parser.add_argument("--prometheus", help="Prometheus base URL (default: the lab's mon1, port 9090)")
    parser.add_argument("--wait", type=int, default=90, help="seconds to wait for every target to be up")
    parser.add_argument("--min-rules", type=int, default=17)
    parser.add_argument("--drill-timeout", type=int, default=180)
    parser.add_argument("--no-drill", action="store_true")
    args = parser.parse_args()
    lab = lablib.Lab(args.lab_name)
    base = args.prometheus or lab.prometheus_url("mon1")
    try:
        api(base, "/api/v1/status/buildinfo")
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        print("Prometheus at %s unreachable: %s" % (base, exc))
        return 2
    ok = check_targets(base, args.wait)
    ok = check_rules(base, args.min_rules) and ok
    if not args.no_drill:
        ok = drill(base, lab.container("pgb1"), "pgb1", args.drill_timeout) and ok
    print("monitoring verify: %s" % ("pass" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
