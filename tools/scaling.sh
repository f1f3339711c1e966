#!/usr/bin/env bash
# Multi-core scaling of keeper on a machine with many cores: keeper confined to
# CPUs 0..S (broadcast core + S shard cores), keeper-bench on the remaining
# CPUs, get and set throughput for S = 1, 2, 4, 8. Output on stdout.
#   tools/scaling.sh [KEEPER_BIN] [BENCH_BIN]
set -euo pipefail
KEEPER=${1:-target/release/keeper}
BENCH=${2:-target/release/keeper-bench}
CPUS=$(nproc)
PORT=24999
WORK=$(mktemp -d /tmp/keeper-scaling.XXXXXX)
trap 'kill -9 $(cat "$WORK/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo "machine: $CPUS x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
for shards in 1 2 4 8; do
  last=$shards
  first_client=$((shards + 1))
  clients_cpus=$((CPUS - first_client))
  [ "$clients_cpus" -ge 2 ] || break
  rm -rf "$WORK/data"
  printf 'tickTime=2000\ndataDir=%s/data\nclientPort=%s\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n' "$WORK" "$PORT" >"$WORK/zoo.cfg"
  taskset -c "0-$last" "$KEEPER" serve --config "$WORK/zoo.cfg" --shards "$shards" >"$WORK/log" 2>&1 &
  echo $! >"$WORK/pid"
  sleep 1
  for w in get set; do
    echo "== shards=$shards (keeper on cpus 0-$last) workload=$w (client on cpus $first_client-$((CPUS - 1)))"
    "$BENCH" run --target 127.0.0.1:$PORT --workload "$w" --clients 256 --pipeline 8 --warmup 1 --duration 4 \
      --executors "$clients_cpus" --cpus "$first_client-$((CPUS - 1))" --server-pid "$(cat "$WORK/pid")" --no-progress | grep -v '^(lat'
  done
  kill -9 "$(cat "$WORK/pid")"; rm -f "$WORK/pid"; sleep 1
done
