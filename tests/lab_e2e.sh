#!/usr/bin/env bash
# The lab end to end, as `make lab` runs it, under its own name so that a
# developer's own lab is left alone: up, converge, converge again and require
# changed=0 and failed=0 on every host, then remove it.
set -euo pipefail
name=${1:-dbstack-ci}
inv=inventory/lab
log=.build/lab-e2e
mkdir -p "$log"

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
lab/timed "e2e first converge" ansible-playbook -i "$inv" playbooks/site.yml -e lab_name="$name" \
    >"$log/converge1.log" 2>&1 || { tail -n 60 "$log/converge1.log"; exit 1; }
recap_ok "$log/converge1.log" 0
lab/timed "e2e idempotent re-run" ansible-playbook -i "$inv" playbooks/site.yml -e lab_name="$name" \
    >"$log/converge2.log" 2>&1 || { tail -n 60 "$log/converge2.log"; exit 1; }
recap_ok "$log/converge2.log" 1
sed -n '/^PLAY RECAP/,$p' "$log/converge2.log"
echo "lab e2e: converged, re-run changed=0 on every host"

# Load acceptance: 500 clients x 30 s through PgBouncer, a RELOAD and a repoint
# in the middle, 0 failed transactions and 0 connection errors.
lab/timed "e2e load 500 clients" python tests/load/pgbench_pgbouncer.py --lab --lab-name "$name"

# Backups: a verified backup, then a scheduled run inside max_age that must
# change nothing, then the monthly restore test into a scratch database.
lab/timed "e2e backup" ansible-playbook -i "$inv" playbooks/backup.yml -e lab_name="$name" \
    >"$log/backup1.log" 2>&1 || { tail -n 60 "$log/backup1.log"; exit 1; }
recap_ok "$log/backup1.log" 0
lab/timed "e2e backup within max_age" ansible-playbook -i "$inv" playbooks/backup.yml -e lab_name="$name" \
    -e dbstack_backup_max_age=1h >"$log/backup2.log" 2>&1 || { tail -n 60 "$log/backup2.log"; exit 1; }
recap_ok "$log/backup2.log" 1
lab/timed "e2e restore test" ansible-playbook -i "$inv" playbooks/restore_test.yml -e lab_name="$name" \
    >"$log/restore_test.log" 2>&1 || { tail -n 60 "$log/restore_test.log"; exit 1; }
recap_ok "$log/restore_test.log" 0
echo "lab e2e: backup verified, max_age run changed=0, restore test passed"

# Monitoring: every Prometheus target up, the rules loaded, and PgBouncer
# stopped -> PgBouncerDown pending -> firing (the lab's for: is 30 s), then
# started again. Bounded: at most 90 s for the targets, 180 s per drill phase.
lab/timed "e2e monitoring verify" timeout 600 python tests/monitoring_verify.py --lab-name "$name" \
    --wait 90 --drill-timeout 180

# Redis failover drill: freeze the master's container, time the Sentinels'
# election and a client writing again, count lost writes (exit 1 above 20 s).
lab/timed "e2e sentinel failover drill" python benchmarks/sentinel_failover.py --runs 1 --lab-name "$name"
