#!/usr/bin/env bash
# Multi-core scaling of keeper on a machine with many cores. Output on stdout.
#  1. Scaling: keeper confined to CPUs 0..S (a dedicated broadcast core + S
#     shard cores), keeper-bench on the remaining CPUs, get and set
#     throughput for S = 1, 2, 4, 8.
#  2. Broadcast core: keeper confined to CPUs 0-1 with one shard, the
#     broadcast loop on a core of its own (dedicated) against on the shard's
#     core (shared), at 16 clients x pipeline 1 and 256 clients x pipeline 8.
#   [SECTIONS="scaling broadcast"] tools/scaling.sh [KEEPER_BIN] [BENCH_BIN]
set -euo pipefail
KEEPER=${1:-target/release/keeper}
BENCH=${2:-target/release/keeper-bench}
CPUS=$(nproc)
PORT=24999
WORK=$(mktemp -d /tmp/keeper-scaling.XXXXXX)
trap 'kill -9 $(cat "$WORK/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo "machine: $CPUS x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"

# measure LAST_CPU SHARDS BROADCAST_CORE CLIENTS PIPELINE WORKLOAD...:
# keeper on CPUs 0-LAST_CPU, keeper-bench on the rest, one line per workload.
measure() {
  local last=$1 shards=$2 mode=$3 clients=$4 pipeline=$5; shift 5
  local first_client=$((last + 1))
  rm -rf "$WORK/data"
  printf 'tickTime=2000\ndataDir=%s/data\nclientPort=%s\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n' "$WORK" "$PORT" >"$WORK/zoo.cfg"
  taskset -c "0-$last" "$KEEPER" serve --config "$WORK/zoo.cfg" --shards "$shards" --broadcast-core "$mode" >"$WORK/log" 2>&1 &
  echo $! >"$WORK/pid"
  sleep 1
  for w in "$@"; do
    echo "== shards=$shards broadcast=$mode (keeper on cpus 0-$last) workload=$w clients=$clients pipeline=$pipeline (client on cpus $first_client-$((CPUS - 1)))"
    "$BENCH" run --target 127.0.0.1:$PORT --workload "$w" --clients "$clients" --pipeline "$pipeline" --warmup 1 --duration 4 \
      --executors "$((CPUS - first_client))" --cpus "$first_client-$((CPUS - 1))" --server-pid "$(cat "$WORK/pid")" --no-progress | grep -v '^(lat'
  done
  kill -9 "$(cat "$WORK/pid")"; rm -f "$WORK/pid"; sleep 1
}

SECTIONS=${SECTIONS:-scaling broadcast}
if [[ " $SECTIONS " == *" scaling "* ]]; then
  for shards in 1 2 4 8; do
    [ $((CPUS - shards - 1)) -ge 2 ] || break
    measure "$shards" "$shards" dedicated 256 8 get set
  done
fi
if [[ " $SECTIONS " == *" broadcast "* ]]; then
  for mode in dedicated shared; do
    measure 1 1 "$mode" 16 1 get set
    measure 1 1 "$mode" 256 8 get set
  done
fi
