#!/usr/bin/env bash
# A rolling restart of keeper's 3-server ensemble under steady keeper-bench
# load: each server in turn gets SIGTERM (a leader hands its leadership
# over first), is started again on its data, and serves before the next.
# keeper-bench's sessions move to another server when theirs closes; a
# failed request or a lost session stops it with an error, so its exit
# status says whether the restart was invisible to clients, and its max
# latency is the longest stall a request saw.
#
#   tools/rolling-restart.sh        # WORKLOAD=set CLIENTS=16 DUR=40 PAUSE=5; results in perf-results/rolling-restart.txt
#
# The servers and the client share this machine's CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-perf-results}
WORKLOAD=${WORKLOAD:-set}
CLIENTS=${CLIENTS:-16}
DUR=${DUR:-40}
PAUSE=${PAUSE:-5}
DIR=$(mktemp -d /tmp/keeper-rolling.XXXXXX)
HOSTS=127.0.0.1:23801,127.0.0.1:23802,127.0.0.1:23803
for port in 23801 23802 23803 23901 23902 23903; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "port $port is already in use: stop that server first" >&2; exit 1; fi
done
cargo build --release --bin keeper --bin keeper-bench >/dev/null
cleanup() {
  for p in $(cat "$DIR"/s*/pid 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT
mode() { (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && timeout 2 cat <&3) 2>/dev/null | sed -n 's/^Mode: //p'; }
BASE=23800 tools/ensemble.sh start 3 "$DIR" >/dev/null
for _ in $(seq 100); do [ "$(for p in 23801 23802 23803; do mode $p; done | sort | paste -sd' ' -)" = "follower follower leader" ] && break; sleep 0.2; done
mkdir -p "$OUT"
timeout $((DUR + 60)) target/release/keeper-bench run --target "$HOSTS" --workload "$WORKLOAD" --clients "$CLIENTS" --warmup 1 --duration "$DUR" --no-progress >"$DIR/bench.txt" 2>&1 &
bench=$!
sleep "$PAUSE"
REPORT="$OUT/rolling-restart.txt"
{
  echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), shared by the 3 servers and the client"
  echo "keeper: $(git rev-parse --short HEAD)$(git diff --quiet -- src || echo '+dirty'); $WORKLOAD, $CLIENTS clients, $DUR s"
  for i in 1 2 3; do
    pid=$(cat "$DIR/s$i/pid")
    was=$(mode $((23800 + i)))
    t0=$(date +%s%N)
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
    t1=$(date +%s%N)
    BASE=23800 tools/ensemble.sh restart "$i" "$DIR" >/dev/null
    until [ -n "$(mode $((23800 + i)))" ]; do sleep 0.05; done
    t2=$(date +%s%N)
    echo "server $i ($was): stopped $(( (t1 - t0) / 1000000 )) ms after SIGTERM, serving again $(( (t2 - t1) / 1000000 )) ms after its start"
    sleep "$PAUSE"
  done
} >"$REPORT"
status=0
wait "$bench" || status=$?
{
  cat "$DIR/bench.txt"
  echo "keeper-bench exit status: $status (0: no failed request, no session lost)"
} >>"$REPORT"
cat "$REPORT"
exit "$status"
