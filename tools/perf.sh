#!/usr/bin/env bash
# Measures keeper against Apache ZooKeeper 3.8 in the same run, with the
# project's own load generator (keeper-bench). Results go to $OUT (default
# perf-results/), one file per measurement; PERF.md quotes them.
#
#   tools/perf.sh [quick|full|memory|pinned|cpu|headline]
#     quick: every measurement, one round each; full: the same with 3 rounds;
#     memory: only the populate/memory/restart part (MEM_ROUNDS times, default 3;
#       other modes do it once); pinned: only the pinned comparison;
#     cpu: only the closed loop at 16 and 64 clients, 3 rounds (for server CPU per op);
#     headline: only the headline (16 clients, 3 rounds) and its latency plot.
#
# Needs: tools/install-test-deps.sh (ZooKeeper 3.8 from Debian), and
# ../shared/reference/zookeeper.sh or ZK_SCRIPT pointing at an equivalent.
# Both servers run on this machine with the client: say so next to every number.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-quick}
OUT=${OUT:-perf-results}
ZK_SCRIPT=${ZK_SCRIPT:-../shared/reference/zookeeper.sh}
KEEPER_PORT=24181
ZK_PORT=22281
WORK=$(mktemp -d /tmp/keeper-perf.XXXXXX)
MEM_ROUNDS=${MEM_ROUNDS:-$([ "$MODE" = memory ] && echo 3 || echo 1)}
PIN=""  # a taskset prefix for the servers (the pinned comparison sets it)
mkdir -p "$OUT"
cargo build --release --bin keeper --bin keeper-bench >/dev/null
BENCH=target/release/keeper-bench

# shellcheck source=tools/serving.sh
source tools/serving.sh
start_keeper() {
  mkdir -p "$WORK/keeper"
  printf 'tickTime=2000\ndataDir=%s/keeper/data\nclientPort=%s\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n' "$WORK" "$KEEPER_PORT" >"$WORK/keeper/zoo.cfg"
  $PIN target/release/keeper serve --config "$WORK/keeper/zoo.cfg" >"$WORK/keeper/log" 2>&1 &
  echo $! >"$WORK/keeper/pid"
  serving "$KEEPER_PORT" || { cat "$WORK/keeper/log" >&2; exit 1; }
  # Whoever answered must be the process just started, not a stray server on the port.
  kill -0 "$(cat "$WORK/keeper/pid")" 2>/dev/null || { echo "keeper exited after starting:" >&2; cat "$WORK/keeper/log" >&2; exit 1; }
}
stop_keeper() { if [ -f "$WORK/keeper/pid" ]; then kill -9 "$(cat "$WORK/keeper/pid")" 2>/dev/null || true; rm -f "$WORK/keeper/pid"; sleep 1; fi; }
start_zk() { $PIN bash "$ZK_SCRIPT" start "$ZK_PORT" "$WORK/zk" >/dev/null; }
stop_zk() { bash "$ZK_SCRIPT" stop "$ZK_PORT" "$WORK/zk" >/dev/null || true; }
cleanup() { stop_keeper; stop_zk; rm -rf "$WORK"; }
trap cleanup EXIT

machine() {
  echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "kernel: $(uname -r)"
  echo "disk: $(df -h "$WORK" | awk 'NR==2 {print $1, $2}') ($(findmnt -no FSTYPE -T "$WORK"))"
  echo "keeper: $(git rev-parse --short HEAD)$(git diff --quiet -- . ':(exclude)perf-results' || echo '+dirty')"
  echo "zookeeper: $(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null)"
}
[ -f "$ZK_SCRIPT" ] || { echo "no ZooKeeper script at $ZK_SCRIPT: set ZK_SCRIPT to ../shared/reference/zookeeper.sh (or an equivalent)" >&2; exit 1; }
for port in $KEEPER_PORT $ZK_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "port $port is already in use: stop that server first" >&2; exit 1; fi
done
machine >"$OUT/machine.txt"
case "$MODE" in quick|full|memory|pinned|cpu|headline) ;; *) echo "usage: tools/perf.sh [quick|full|memory|pinned|cpu|headline]" >&2; exit 2 ;; esac
if [ "$MODE" = quick ] || [ "$MODE" = memory ]; then ROUNDS=1; DUR=3; else ROUNDS=3; DUR=5; fi
compare() { # NAME ARGS...: keeper (A) against zookeeper (B)
  local name=$1; shift
  $BENCH compare --a 127.0.0.1:$KEEPER_PORT --a-name keeper --a-pid "$KP" --b 127.0.0.1:$ZK_PORT --b-name zookeeper --b-pid "$ZP" --no-progress "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err"
}

headline() { compare headline --workload get,set,create,mixed --clients 16 --rounds 3 --warmup 2 --duration 5 --plot "$OUT/latency.svg"; }

if [ "$MODE" = headline ]; then
start_keeper
start_zk
KP=$(cat "$WORK/keeper/pid")
ZP=$(cat "$WORK/zk/zk.pid")
headline
echo "results in $OUT"; exit 0
fi

if [ "$MODE" = cpu ]; then
start_keeper
start_zk
KP=$(cat "$WORK/keeper/pid")
ZP=$(cat "$WORK/zk/zk.pid")
for clients in 16 64; do
  for pipe in 1 16; do
    compare "cpu-c${clients}-p${pipe}" --workload get,set,create,mixed --clients "$clients" --pipeline "$pipe" --rounds "$ROUNDS" --warmup 1 --duration "$DUR"
  done
done
echo "results in $OUT"; exit 0
fi

if [ "$MODE" = quick ] || [ "$MODE" = full ]; then
$BENCH calibrate --dir "$WORK" >"$OUT/calibrate.txt"
start_keeper
start_zk
KP=$(cat "$WORK/keeper/pid")
ZP=$(cat "$WORK/zk/zk.pid")
for clients in 1 16 64; do
  for pipe in 1 16; do
    compare "closed-c${clients}-p${pipe}" --workload get,set,create,mixed --clients "$clients" --pipeline "$pipe" --rounds "$ROUNDS" --warmup 1 --duration "$DUR"
  done
done
compare open-loop-get --workload get --clients 16 --rate 10000 --rounds 3 --warmup 1 --duration 4
compare open-loop-set --workload set --clients 16 --rate 5000 --rounds 3 --warmup 1 --duration 4
headline
compare watch-storm --workload watch,storm --watchers 1000 --clients 2000 --rounds 1 --duration 3
compare churn --workload churn --clients 16 --rounds 1 --warmup 1 --duration "$DUR"
compare misc --workload exists,getchildren,multi,delete,storm --clients 16 --rounds 1 --warmup 1 --duration "$DUR"
fi

# Pinned apart: both servers confined to CPU 1 and the client to CPU 0, so
# tails are not the two competing for a core (keeper then runs its broadcast
# and shard threads on the one CPU).
if [ "$MODE" != memory ] && [ "$(nproc)" -ge 2 ]; then
  stop_keeper; stop_zk; rm -rf "$WORK/keeper" "$WORK/zk"
  PIN="taskset -c 1"; start_keeper; start_zk; PIN=""
  KP=$(cat "$WORK/keeper/pid"); ZP=$(cat "$WORK/zk/zk.pid")
  compare pinned --workload get,set,create,mixed --clients 16 --rounds "$ROUNDS" --warmup 1 --duration "$DUR" --cpus 0
fi
[ "$MODE" = pinned ] && { echo "results in $OUT"; exit 0; }

# Memory, disk and restart after populating N znodes of 100 bytes, each server
# alone. Resident memory moves by tens of MiB from run to run (what a
# snapshot or the collector has in flight when it is read), so memory mode
# repeats the whole measurement; PERF.md quotes medians and ranges.
for n in $(for _ in $(seq "$MEM_ROUNDS"); do echo 100000 1000000; done); do
  stop_keeper; stop_zk; rm -rf "$WORK/keeper" "$WORK/zk"
  start_keeper; KP=$(cat "$WORK/keeper/pid")
  $BENCH run --target 127.0.0.1:$KEEPER_PORT --workload populate --nodes "$n" --size 100 --clients 16 --pipeline 32 --server-pid "$KP" --json >"$OUT/populate-keeper-$n.json"
  sleep 5
  keeper_rss=$(awk '/VmRSS/ {print $2}' /proc/"$KP"/status)
  keeper_disk=$(du -sk "$WORK/keeper/data" | cut -f1)
  stop_keeper
  t0=$(date +%s%N); start_keeper; t1=$(date +%s%N)
  keeper_restart_ms=$(( (t1 - t0) / 1000000 ))
  start_zk; ZP=$(cat "$WORK/zk/zk.pid")
  $BENCH run --target 127.0.0.1:$ZK_PORT --workload populate --nodes "$n" --size 100 --clients 16 --pipeline 32 --server-pid "$ZP" --json >"$OUT/populate-zookeeper-$n.json"
  sleep 5
  zk_rss=$(awk '/VmRSS/ {print $2}' /proc/"$ZP"/status)
  zk_disk=$(du -sk "$WORK/zk/data" | cut -f1)
  kill -9 "$ZP"; sleep 1; rm -f "$WORK/zk/zk.pid"
  # Restart as zookeeper.sh does, timing until srvr answers (its own wait polls every 0.5 s).
  t0=$(date +%s%N); bash "$ZK_SCRIPT" start "$ZK_PORT" "$WORK/zk" >/dev/null & starter=$!; serving "$ZK_PORT"; t1=$(date +%s%N); wait "$starter"
  zk_restart_ms=$(( (t1 - t0) / 1000000 ))
  printf 'znodes=%s keeper_rss_kb=%s zookeeper_rss_kb=%s keeper_disk_kb=%s zookeeper_disk_kb=%s keeper_restart_ms=%s zookeeper_restart_ms=%s\n' \
    "$n" "$keeper_rss" "$zk_rss" "$keeper_disk" "$zk_disk" "$keeper_restart_ms" "$zk_restart_ms" >>"$OUT/memory-restart.txt"
  grep -h "recovered" "$WORK/keeper/log" | tail -1 >>"$OUT/memory-restart.txt"
done
echo "results in $OUT"
