#!/usr/bin/env bash
# The whole test suite (make test; CI's .ci/run calls it).
# The quick stages run one after another; then the slow ones -- integration
# tests, the Molecule scenarios and the lab end-to-end -- run in three lanes
# side by side (each lane's containers and networks have their own names), so
# that CI stays well inside its time limit on 2 cores. Each stage's output goes
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
    "integration molecule-common molecule-postgres_ha"
    "molecule-pgbouncer molecule-sentinel"
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
