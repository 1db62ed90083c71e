#!/usr/bin/env bash
# The whole test suite (make test; CI's .ci/run calls it).
# The quick stages run one after another; then the slow ones run in two lanes
# side by side (each lane's containers and networks have their own names):
# the integration tests and the Molecule scenario (PostgreSQL failover and
# split brain), and the lab end-to-end (the whole stack from the bare image).
# Each layer proves what the others don't: see docs/testing.md. Each stage's output goes
# to .build/logs/STAGE.log; a failed stage prints its last lines.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
logs=.build/logs
results=.build/results.txt
mkdir -p "$logs"
: >"$results"
export TIMINGS=$PWD/.build/timings.txt

QUICK=(lint sanity unit rules build-check)
LANES=(
    "integration molecule-postgres_ha"
    "lab-e2e"
)

stage() {
    local name=$1 start secs status
    start=$(date +%s.%N)
    echo "[$(date +%T)] $name: started"
    if make --no-print-directory "$name" >"$logs/$name.log" 2>&1; then status=ok; else status=FAILED; fi
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    printf '%-24s %8s s  %s\n' "$name" "$secs" "$status" >>"$results"
    echo "[$(date +%T)] $name: $status in $secs s (log: $logs/$name.log)"
    if [ "$status" != ok ]; then
        echo "----- last lines of $logs/$name.log -----"
        tail -n 80 "$logs/$name.log"
        echo "-----"
    fi
}

lane() {
    local name
    for name in "$@"; do stage "$name"; done
}

for name in "${QUICK[@]}"; do stage "$name"; done
for spec in "${LANES[@]}"; do
    # shellcheck disable=SC2086  # a lane is a space-separated list of stages
    lane $spec &
done
wait

echo
echo "Test stages:"
cat "$results"
if [ -f "$TIMINGS" ]; then
    echo
    echo "Steps inside the stages:"
    cat "$TIMINGS"
fi
passed=$(grep -c '  ok$' "$results")
failed=$(grep -c '  FAILED$' "$results")
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
