#!/usr/bin/env bash
# Long simulator runs: SEEDS seeds starting at FIRST, split over JOBS
# processes (default: one per CPU). Each process runs the CI test
# (sim::tests::seeded_runs...) on its own range of seeds; a failing seed
# prints the one command that replays it.
#
#   tools/sim.sh SEEDS [JOBS] [FIRST]
#   e.g. tools/sim.sh 20000        # about 48M client operations, 15 minutes on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:?usage: tools/sim.sh SEEDS [JOBS] [FIRST]}
JOBS=${2:-$(nproc)}
FIRST=${3:-1}
cargo nextest run --lib --no-run >/dev/null 2>&1 || cargo nextest run --lib --no-run
LOGS=$(mktemp -d /tmp/keeper-sim.XXXXXX)
per=$(( (SEEDS + JOBS - 1) / JOBS ))
pids=()
for j in $(seq 0 $((JOBS - 1))); do
  from=$(( FIRST + j * per ))
  count=$(( per < SEEDS - j * per ? per : SEEDS - j * per ))
  [ "$count" -gt 0 ] || break
  KEEPER_SIM_FIRST=$from KEEPER_SIM_SEEDS=$count cargo nextest run --lib sim::tests::seeded_runs --no-capture >"$LOGS/$j.log" 2>&1 &
  pids+=($!)
done
failed=0
for j in "${!pids[@]}"; do
  if wait "${pids[$j]}"; then
    grep -h '^sim:' "$LOGS/$j.log" || true
  else
    failed=1
    echo "process $j failed:"; grep -h -A2 'seed [0-9]*:' "$LOGS/$j.log" | head -20
  fi
done
[ "$failed" = 0 ] && { rm -rf "$LOGS"; echo "all $SEEDS seeds passed"; } || { echo "logs in $LOGS"; exit 1; }
