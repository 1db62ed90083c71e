#!/usr/bin/env bash
# The lab end to end, as `make lab` runs it, under its own name so that a
# developer's own lab is left alone: up; converge from the bare image at
# -vvv --diff (no secret may show); converge again with changed=0 on every
# host; verify; load; backup and restore test; health (passes, then fails
# with PgBouncer stopped); support bundle (canary secrets planted, none in it); monitoring drill; Redis failover drill, converge
# again (changed=0), verify and health; switchover (refused under a held
# lock), site.yml changed=0, health, switchover back; failover refused on a
# healthy stack, then a killed and a frozen primary failed over (the old one
# stays down or stops itself, and rejoins with pg_rewind), site.yml changed=0
# after each, then the same with a network partition; a standby ahead of a
# forced failover's target rewound by rejoin.yml; health; then remove it.
set -euo pipefail
name=${1:-dbstack-ci}
inv=inventory/lab
log=.build/lab-e2e
rm -rf "$log" && mkdir -p "$log"

down() { ansible-playbook -i "$inv" lab/down.yml -e lab_name="$name" >"$log/down.log" 2>&1 || true; }
trap down EXIT

recap_ok() {  # FILE WANT_CHANGED_ZERO
    local file=$1 zero_changed=$2
    grep -qE '^PLAY RECAP' "$file" || { echo "no PLAY RECAP in $file"; return 1; }
    if sed -n '/^PLAY RECAP/,$p' "$file" | grep -E 'failed=[1-9]|unreachable=[1-9]'; then
        echo "failures in $file"; return 1
    fi
    if [ "$zero_changed" = 1 ] && sed -n '/^PLAY RECAP/,$p' "$file" | grep -E 'changed=[1-9]'; then
        echo "second converge was not idempotent: see $file"; return 1
    fi
}

lab/timed "e2e lab up" ansible-playbook -i "$inv" lab/up.yml -e lab_name="$name" >"$log/up.log" 2>&1 \
    || { tail -n 40 "$log/up.log"; exit 1; }
# The first converge runs at -vvv --diff: no lab secret may show in it (nor in
# any other log of this run: see the leak check at the end).
lab/timed "e2e first converge" ansible-playbook -i "$inv" playbooks/site.yml -e lab_name="$name" -vvv --diff \
    >"$log/converge1.log" 2>&1 || { tail -n 60 "$log/converge1.log"; exit 1; }
recap_ok "$log/converge1.log" 0
python tests/lab/leak_check.py "$log/converge1.log"
lab/timed "e2e idempotent re-run" ansible-playbook -i "$inv" playbooks/site.yml -e lab_name="$name" \
    >"$log/converge2.log" 2>&1 || { tail -n 60 "$log/converge2.log"; exit 1; }
recap_ok "$log/converge2.log" 1
# On a re-run no role runs apt (they skip it when common_installed_packages
# has what they need): a task that ran instead of skipping shows as "ok:".
if awk '/^TASK \[/ { apt = ($0 ~ /Packages \| Install the baseline|Install \| PostgreSQL|Install \| PgBouncer and|Install \| Redis server|Install the exporters|Python cryptography on the host/) }
        apt && /^ok: \[/ { print "apt ran on the re-run: " $0; found = 1 } END { exit !found }' "$log/converge2.log"; then
    exit 1
fi
sed -n '/^PLAY RECAP/,$p' "$log/converge2.log"
echo "lab e2e: converged, re-run changed=0 on every host"

# What the stack must be beyond changed=0: baseline, PgBouncer (TLS, scram,
# limits, reload versus restart, preflight), Redis replication and Sentinels.
lab/timed "e2e verify" ansible-playbook -i "$inv" tests/lab/verify.yml -e lab_name="$name" \
    >"$log/verify1.log" 2>&1 || { tail -n 60 "$log/verify1.log"; exit 1; }
recap_ok "$log/verify1.log" 0

# Load acceptance: 500 clients x 30 s through PgBouncer, a RELOAD and a repoint
# in the middle, 0 failed transactions and 0 connection errors.
lab/timed "e2e load 500 clients" python tests/load/pgbench_pgbouncer.py --lab --lab-name "$name"

# Backups: a verified backup, then a scheduled run inside max_age that must
# change nothing, then the monthly restore test into a scratch database.
lab/timed "e2e backup" ansible-playbook -i "$inv" playbooks/backup.yml -e lab_name="$name" -vvv --diff \
    >"$log/backup1.log" 2>&1 || { tail -n 60 "$log/backup1.log"; exit 1; }
recap_ok "$log/backup1.log" 0
lab/timed "e2e backup within max_age" ansible-playbook -i "$inv" playbooks/backup.yml -e lab_name="$name" \
    -e backup_max_age=1h >"$log/backup2.log" 2>&1 || { tail -n 60 "$log/backup2.log"; exit 1; }
recap_ok "$log/backup2.log" 1
lab/timed "e2e restore test" ansible-playbook -i "$inv" playbooks/restore_test.yml -e lab_name="$name" -vvv --diff \
    >"$log/restore_test.log" 2>&1 || { tail -n 60 "$log/restore_test.log"; exit 1; }
recap_ok "$log/restore_test.log" 0
echo "lab e2e: backup verified, max_age run changed=0, restore test passed"

# Health (playbooks/health.yml): read-only, so in check mode at -vvv --diff it
# must pass with changed=0 on the healthy stack (backup and restore test just
# ran); with PgBouncer stopped it must fail naming pgbouncer_up and nothing
# else; PgBouncer is then started again.
health_json() {  # FILE WANT_OK WANT_FAILED_CHECKS...
    python - "$@" <<'PY'
import json, sys
path, want_ok, want = sys.argv[1], sys.argv[2] == "true", sorted(sys.argv[3:])
report = json.load(open(path))
failed = sorted("%s %s" % (c["check"], c["target"]) for c in report["checks"] if c["status"] == "fail")
if report["ok"] is not want_ok or failed != want:
    sys.exit("health report %s: ok=%s, failed %s; expected ok=%s, failed %s" % (path, report["ok"], failed, want_ok, want))
print("health report %s: %d checks, ok=%s, failed %s" % (path, len(report["checks"]), report["ok"], failed))
PY
}
# The lab runs synchronous replication (FIRST 1): the primary must have a synchronous standby.
sync_ok() {  # FILE
    python - "$1" <<'PY'
import json, sys
checks = [c for c in json.load(open(sys.argv[1]))["checks"] if c["check"] == "postgres_sync"]
if [c["status"] for c in checks] != ["ok"]:
    sys.exit("health report %s: postgres_sync should be one ok check, got %s" % (sys.argv[1], checks))
print("synchronous replication: %s" % checks[0]["detail"])
PY
}
lab/timed "e2e health" ansible-playbook -i "$inv" playbooks/health.yml -e lab_name="$name" --check -vvv --diff \
    -e health_report_file="$PWD/$log/health1.json" >"$log/health1.log" 2>&1 || { tail -n 60 "$log/health1.log"; exit 1; }
recap_ok "$log/health1.log" 1
health_json "$log/health1.json" true
sync_ok "$log/health1.json"
ansible -i "$inv" pgb1 -e lab_name="$name" -b -m ansible.builtin.systemd_service -a "name=pgbouncer state=stopped" \
    >"$log/pgbouncer_stop.log" 2>&1 || { tail -n 20 "$log/pgbouncer_stop.log"; exit 1; }
# (inverted: the step is ok when health fails)
lab/timed "e2e health, PgBouncer stopped (must fail)" bash -c '! "$@"' _ ansible-playbook -i "$inv" \
    playbooks/health.yml -e lab_name="$name" -e health_report_file="$PWD/$log/health2.json" >"$log/health2.log" 2>&1 \
    || { echo "health passed with PgBouncer stopped: see $log/health2.log"; exit 1; }
grep -q "pgbouncer_up pgb1: the admin console did not answer" "$log/health2.log" \
    || { echo "the failure does not name pgbouncer_up: see $log/health2.log"; exit 1; }
health_json "$log/health2.json" false "pgbouncer_up pgb1"
ansible -i "$inv" pgb1 -e lab_name="$name" -b -m ansible.builtin.systemd_service -a "name=pgbouncer state=started" \
    >"$log/pgbouncer_start.log" 2>&1 || { tail -n 20 "$log/pgbouncer_start.log"; exit 1; }
ansible -i "$inv" pgb1 -e lab_name="$name" -m ansible.builtin.wait_for -a "port=6432 timeout=30" \
    >>"$log/pgbouncer_start.log" 2>&1 || { tail -n 20 "$log/pgbouncer_start.log"; exit 1; }
echo "lab e2e: health passed on the healthy stack (check mode, changed=0), failed naming pgbouncer_up when it was stopped"

# Support bundle (playbooks/support_bundle.yml) at -vvv --diff: canary secrets of every form (env, INI, YAML,
# JSON, URLs, pgpass, userlist verifiers, requirepass / masterauth / auth-pass / sentinel-pass, ACL > and #sha256,
# systemd Environment=, SQL PASSWORD in a log and live in pg_stat_activity, private keys) are planted on every
# host; none may show in the bundle or the run's output, the masked keys must, private keys are not collected,
# the redaction report counts every rule, and no lab secret is in it (tests/lab/support_bundle_check.py).
python tests/lab/support_bundle_check.py plant "$log/canaries" >/dev/null
ansible-playbook -i "$inv" tests/lab/support_canaries.yml -e lab_name="$name" -e canary_dir="$PWD/$log/canaries" \
    >"$log/canaries_plant.log" 2>&1 || { tail -n 40 "$log/canaries_plant.log"; exit 1; }
lab/timed "e2e support bundle" ansible-playbook -i "$inv" playbooks/support_bundle.yml -e lab_name="$name" -vvv --diff \
    -e support_bundle_dir="$PWD/$log" -e '{"support_bundle_extra_files": ["/etc/dbstack-canary/*"]}' \
    >"$log/support_bundle.log" 2>&1 || { tail -n 60 "$log/support_bundle.log"; exit 1; }
recap_ok "$log/support_bundle.log" 0
python tests/lab/support_bundle_check.py check "$log"/dbstack-support-*.tar.gz "$log/canaries/canaries.json" \
    "$log/support_bundle.log"
ansible-playbook -i "$inv" tests/lab/support_canaries.yml -e lab_name="$name" -e canary_state=absent \
    >"$log/canaries_remove.log" 2>&1 || { tail -n 40 "$log/canaries_remove.log"; exit 1; }
rm -f "$log"/dbstack-support-*.tar.gz
echo "lab e2e: support bundle built, no canary or lab secret in it or in its -vvv output, keys kept"

# Monitoring: every Prometheus target up, the rules loaded, and PgBouncer
# stopped -> PgBouncerDown pending -> firing (the lab's for: is 30 s), then
# started again. Bounded: at most 90 s for the targets, 180 s per drill phase.
lab/timed "e2e monitoring verify" timeout 600 python tests/monitoring_verify.py --lab-name "$name" \
    --wait 90 --drill-timeout 180

# Redis failover drill: freeze the master's container, time the Sentinels'
# election and a client writing again, count lost writes (exit 1 above 20 s).
lab/timed "e2e sentinel failover drill" python benchmarks/sentinel_failover.py --runs 1 --lab-name "$name"

# After the failover the whole stack converges again with nothing to change
# (the role keeps the new master; it never templates Sentinel's live state
# away) and verifies: one master, every Sentinel naming it.
lab/timed "e2e re-run after the Redis failover" ansible-playbook -i "$inv" playbooks/site.yml -e lab_name="$name" \
    >"$log/converge3.log" 2>&1 || { tail -n 60 "$log/converge3.log"; exit 1; }
recap_ok "$log/converge3.log" 1
lab/timed "e2e verify after the failover" ansible-playbook -i "$inv" tests/lab/verify.yml -e lab_name="$name" \
    --limit 'redis:sentinel' >"$log/verify2.log" 2>&1 || { tail -n 60 "$log/verify2.log"; exit 1; }
recap_ok "$log/verify2.log" 0
# Health after the Redis failover: the new master, every Sentinel following it.
lab/timed "e2e health after the failover" ansible-playbook -i "$inv" playbooks/health.yml -e lab_name="$name" \
    -e health_report_file="$PWD/$log/health3.json" >"$log/health3.log" 2>&1 || { tail -n 60 "$log/health3.log"; exit 1; }
health_json "$log/health3.json" true

# Switchover and back (playbooks/switchover.yml): the first at -vvv --diff
# (leak-checked with the rest); a second operation is refused while the lock
# is held; site.yml afterwards reports changed=0 and keeps the new primary;
# health passes with it.
lab/timed "e2e switchover" ansible-playbook -i "$inv" playbooks/switchover.yml -e lab_name="$name" -vvv --diff \
    >"$log/switchover1.log" 2>&1 || { tail -n 80 "$log/switchover1.log"; exit 1; }
recap_ok "$log/switchover1.log" 0
grep -q "pg1 -> pg2: promoted on timeline" "$log/switchover1.log" || { echo "no pg1 -> pg2 report in switchover1.log"; exit 1; }
ansible -i "$inv" postgres -e lab_name="$name" -b -m dbstack.ha.ops_lock \
    -a "token=e2e-held owner=e2e operation=drill ttl=300" >"$log/lock.log" 2>&1 || { tail -n 20 "$log/lock.log"; exit 1; }
if ansible-playbook -i "$inv" playbooks/switchover.yml -e lab_name="$name" >"$log/switchover_locked.log" 2>&1; then
    echo "switchover ran while another operation held the lock"; exit 1
fi
grep -q "operations lock is held by e2e (drill)" "$log/switchover_locked.log" \
    || { echo "the refusal does not name the holder: see $log/switchover_locked.log"; exit 1; }
ansible -i "$inv" postgres -e lab_name="$name" -b -m dbstack.ha.ops_lock -a "token=e2e-held state=absent" \
    >>"$log/lock.log" 2>&1 || { tail -n 20 "$log/lock.log"; exit 1; }
lab/timed "e2e site.yml after the switchover" ansible-playbook -i "$inv" playbooks/site.yml -e lab_name="$name" \
    >"$log/converge4.log" 2>&1 || { tail -n 60 "$log/converge4.log"; exit 1; }
recap_ok "$log/converge4.log" 1
lab/timed "e2e health after the switchover" ansible-playbook -i "$inv" playbooks/health.yml -e lab_name="$name" \
    -e health_report_file="$PWD/$log/health4.json" >"$log/health4.log" 2>&1 || { tail -n 60 "$log/health4.log"; exit 1; }
python - "$log/health4.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
assert report["ok"] and report["primary"] == "pg2", (report["primary"], report["failed"])
print("health after the switchover: ok, primary %s" % report["primary"])
PY
sync_ok "$log/health4.json"
lab/timed "e2e switchover back" ansible-playbook -i "$inv" playbooks/switchover.yml -e lab_name="$name" \
    -e dbstack_switchover_target=pg1 >"$log/switchover2.log" 2>&1 || { tail -n 80 "$log/switchover2.log"; exit 1; }
recap_ok "$log/switchover2.log" 0
grep -q "pg2 -> pg1: promoted on timeline" "$log/switchover2.log" || { echo "no pg2 -> pg1 report"; exit 1; }
echo "lab e2e: switchover and back, refused under a held lock, site.yml changed=0 after it"

# Failover (playbooks/failover.yml). On the healthy stack it is refused (at -vvv: its probe logs in with the
# superuser's password, leak-checked below), naming who still sees the primary take writes. Then the failover
# benchmark, one cycle each: SIGKILL the primary's container, failover.yml at once (kill to first write through
# PgBouncer <= 10 s), the container started again must not bring PostgreSQL back as a primary (start guard),
# rejoin.yml rewinds it; then the same with a frozen primary (podman pause: unreachable, then thawed - its
# watchdog stops it). After each, site.yml reports changed=0.
if ansible-playbook -i "$inv" playbooks/failover.yml -e lab_name="$name" -vvv >"$log/failover_refused.log" 2>&1; then
    echo "failover.yml ran on a healthy stack"; exit 1
fi
grep -q "still takes writes as seen from" "$log/failover_refused.log" \
    || { echo "the refusal does not say who sees the primary: see $log/failover_refused.log"; exit 1; }
lab/timed "e2e failover (container killed)" python benchmarks/failover.py --lab-name "$name" --runs 1 --no-hand \
    --max-rto 10 >"$log/failover_kill.txt" 2>&1 || { cat "$log/failover_kill.txt"; exit 1; }
cat "$log/failover_kill.txt"
lab/timed "e2e site.yml after the failover" ansible-playbook -i "$inv" playbooks/site.yml -e lab_name="$name" \
    >"$log/converge5.log" 2>&1 || { tail -n 60 "$log/converge5.log"; exit 1; }
recap_ok "$log/converge5.log" 1
lab/timed "e2e failover (host frozen)" python benchmarks/failover.py --lab-name "$name" --runs 1 --no-hand \
    --frozen --max-rto 15 >"$log/failover_frozen.txt" 2>&1 || { cat "$log/failover_frozen.txt"; exit 1; }
cat "$log/failover_frozen.txt"
lab/timed "e2e site.yml after the second failover" ansible-playbook -i "$inv" playbooks/site.yml -e lab_name="$name" \
    >"$log/converge6.log" 2>&1 || { tail -n 60 "$log/converge6.log"; exit 1; }
recap_ok "$log/converge6.log" 1
# A network partition: the primary keeps running, cut off from every other lab host (podman network disconnect);
# Ansible still reaches it through its podman connection, so failover.yml fences it on its host (immediate stop),
# then the partition heals (podman network connect --ip) and rejoin.yml rewinds it.
lab/timed "e2e failover (network partition)" python benchmarks/failover.py --lab-name "$name" --runs 1 --no-hand \
    --partition --max-rto 15 >"$log/failover_partition.txt" 2>&1 || { cat "$log/failover_partition.txt"; exit 1; }
cat "$log/failover_partition.txt"
lab/timed "e2e site.yml after the partition" ansible-playbook -i "$inv" playbooks/site.yml -e lab_name="$name" \
    >"$log/converge_partition.log" 2>&1 || { tail -n 60 "$log/converge_partition.log"; exit 1; }
recap_ok "$log/converge_partition.log" 1
# A standby ahead of the one a forced failover promotes (tests/lab/diverged_standby.py): stopped while rows are
# written, the primary killed, the lagging standby promoted with failover_force; rejoin.yml must find the other one
# diverged and rewind it with the old primary, and every standby stream again; site.yml then changed=0.
lab/timed "e2e diverged standby rewound" python tests/lab/diverged_standby.py --lab-name "$name" \
    >"$log/diverged.txt" 2>&1 || { cat "$log/diverged.txt"; exit 1; }
cat "$log/diverged.txt"
lab/timed "e2e site.yml after the diverged standby" ansible-playbook -i "$inv" playbooks/site.yml -e lab_name="$name" \
    >"$log/converge7.log" 2>&1 || { tail -n 60 "$log/converge7.log"; exit 1; }
recap_ok "$log/converge7.log" 1
lab/timed "e2e health after the failovers" ansible-playbook -i "$inv" playbooks/health.yml -e lab_name="$name" \
    -e health_report_file="$PWD/$log/health5.json" >"$log/health5.log" 2>&1 || { tail -n 60 "$log/health5.log"; exit 1; }
health_json "$log/health5.json" true
sync_ok "$log/health5.json"
echo "lab e2e: failover refused on a healthy stack; three failovers (killed, frozen, partitioned), each old primary refused or stopped, rewound and rejoined; a diverged standby rewound; site.yml changed=0"

# No lab secret in any playbook output of this run (raw, URL-encoded, base64,
# or a derived form as good as the secret).
python tests/lab/leak_check.py "$log"/*.log
