#!/usr/bin/env bash
# Multi-core scaling of keeper on a machine with many cores. Output on stdout.
#  1. Scaling: keeper confined to CPUs 0..S (a dedicated broadcast core + S
#     shard cores), keeper-bench on the remaining CPUs, get and set
#     throughput for S = 1, 2, 4, 8.
#  2. Broadcast core: keeper confined to CPUs 0-1 with one shard, the
#     broadcast loop on a core of its own (dedicated) against on the shard's
#     core (shared), at 16 clients x pipeline 1 and 256 clients x pipeline 8.
#  3. Compare (only when named in SECTIONS): keeper and Apache ZooKeeper each
#     confined to the same SERVER_CPUS CPUs (default 4), keeper-bench on the
#     rest; get, set, create and mixed at 64 x 1 and 256 x 8, keeper-bench
#     compare alternating the two over ROUNDS rounds (default 2) of DUR
#     seconds (default 4), after warming both for WARM seconds (default 10).
#     ZooKeeper runs as ZK_JAVA (default java) with ZK_CLASSPATH (default
#     Debian's, as tools/install-test-deps.sh installs it) and -Xmx1g.
#     PAIRS (default "64:1 256:8", clients:pipeline) and WORKLOADS choose the
#     closed loops; RATES (e.g. "get:10000 set:5000") runs open loops instead;
#     KEEPER_ARGS adds serve options (e.g. "--broadcast-core shared").
#   [SECTIONS="scaling broadcast compare"] tools/scaling.sh [KEEPER_BIN] [BENCH_BIN]
set -euo pipefail
KEEPER=${1:-target/release/keeper}
BENCH=${2:-target/release/keeper-bench}
CPUS=$(nproc)
PORT=24999
WORK=$(mktemp -d /tmp/keeper-scaling.XXXXXX)
trap 'kill -9 $(cat "$WORK"/*pid 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT
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
if [[ " $SECTIONS " == *" compare "* ]]; then
  S=${SERVER_CPUS:-4} ROUNDS=${ROUNDS:-2} DUR=${DUR:-4} WARM=${WARM:-10}
  ZK_JAVA=${ZK_JAVA:-java} ZK_CLASSPATH=${ZK_CLASSPATH:-/etc/zookeeper/conf:/usr/share/java/zookeeper.jar}
  [ $((CPUS - S)) -ge 1 ] || { echo "compare: SERVER_CPUS=$S leaves no CPU for the client" >&2; exit 1; }
  ZK_PORT=$((PORT + 1))
  # shellcheck source=tools/serving.sh
  source "$(dirname "$0")/serving.sh"
  mkdir -p "$WORK/keeper" "$WORK/zk"
  for side in keeper:$PORT zk:$ZK_PORT; do
    printf 'tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s/data\nclientPort=%s\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n4lw.commands.whitelist=*\nadmin.enableServer=false\nextendedTypesEnabled=true\n' \
      "$WORK/${side%:*}" "${side#*:}" >"$WORK/${side%:*}/zoo.cfg"
  done
  # shellcheck disable=SC2086 # KEEPER_ARGS: extra serve options, split on spaces
  taskset -c "0-$((S - 1))" "$KEEPER" serve --config "$WORK/keeper/zoo.cfg" ${KEEPER_ARGS:-} >"$WORK/keeper/log" 2>&1 &
  echo $! >"$WORK/keeper.pid"
  taskset -c "0-$((S - 1))" "$ZK_JAVA" -Xmx1g -cp "$ZK_CLASSPATH" -Dzookeeper.extendedTypesEnabled=true \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$WORK/zk/zoo.cfg" >"$WORK/zk/log" 2>&1 &
  echo $! >"$WORK/zk.pid"
  serving "$PORT" || exit 1
  serving "$ZK_PORT" || exit 1
  echo "== compare: keeper and ZooKeeper ($("$ZK_JAVA" -version 2>&1 | head -1)) each on cpus 0-$((S - 1)), client on cpus $S-$((CPUS - 1))"
  client=(--executors "$((CPUS - S))" --cpus "$S-$((CPUS - 1))" --no-progress)
  for port in "$PORT" "$ZK_PORT"; do  # warm both (ZooKeeper's JIT above all); not reported
    "$BENCH" run --target "127.0.0.1:$port" --workload mixed --clients 64 --pipeline 8 --warmup 0 --duration "$WARM" "${client[@]}" >/dev/null
  done
  both=(--a "127.0.0.1:$PORT" --a-name keeper --a-pid "$(cat "$WORK/keeper.pid")" --b "127.0.0.1:$ZK_PORT" --b-name zookeeper --b-pid "$(cat "$WORK/zk.pid")")
  if [ -n "${RATES:-}" ]; then  # open loop: WORKLOAD:RATE pairs, 16 sessions
    for wr in $RATES; do
      echo "== compare open loop workload=${wr%:*} rate=${wr#*:} clients=16"
      "$BENCH" compare "${both[@]}" --workload "${wr%:*}" --clients 16 --rate "${wr#*:}" --rounds "$ROUNDS" --warmup 1 --duration "$DUR" "${client[@]}"
    done
  else
    for cp in ${PAIRS:-64:1 256:8}; do
      echo "== compare clients=${cp%:*} pipeline=${cp#*:}"
      "$BENCH" compare "${both[@]}" --workload "${WORKLOADS:-get,set,create,mixed}" --clients "${cp%:*}" --pipeline "${cp#*:}" --rounds "$ROUNDS" --warmup 1 --duration "$DUR" "${client[@]}"
    done
  fi
fi
