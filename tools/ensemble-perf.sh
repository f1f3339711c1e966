#!/usr/bin/env bash
# keeper's 3-server ensemble against Apache ZooKeeper 3.8's 3-server
# ensemble, on this machine, in the same run: keeper-bench compare spreads
# its clients over each ensemble's servers (client i on server i mod 3) and
# sums server CPU and RSS over the three pids. Results go to $OUT (default
# perf-results/), one file per client count, plus the servers' RSS.
#
#   tools/ensemble-perf.sh
#   ROUNDS=3 DUR=5 CLIENTS="16 64" WORKLOADS=get,set,create WARM=10 tools/ensemble-perf.sh
#
# Before measuring, WARM seconds per workload of untimed load go to both
# ensembles (ZooKeeper's JIT otherwise makes its first workload swing 2-3x).
#
# keeper: tools/ensemble.sh (BASE 23800, each server on its own CPU share);
# ZooKeeper: ../shared/reference/zookeeper.sh ensemble 23950 (or ZK_SCRIPT).
# Servers and client share this machine's CPUs: say so next to every number.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-perf-results}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-5}
CLIENTS=${CLIENTS:-"16 64"}
WORKLOADS=${WORKLOADS:-get,set,create}
WARM=${WARM:-10}
ZK_SCRIPT=${ZK_SCRIPT:-../shared/reference/zookeeper.sh}
KEEPER_HOSTS=127.0.0.1:23801,127.0.0.1:23802,127.0.0.1:23803
ZK_HOSTS=127.0.0.1:23950,127.0.0.1:23951,127.0.0.1:23952
[ -f "$ZK_SCRIPT" ] || { echo "no ZooKeeper script at $ZK_SCRIPT: set ZK_SCRIPT" >&2; exit 1; }
for port in 23801 23802 23803 23901 23902 23903 23950 23951 23952; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "port $port is already in use: stop that server first" >&2; exit 1; fi
done
WORK=$(mktemp -d /tmp/keeper-ensemble-perf.XXXXXX)
mkdir -p "$OUT"
cargo build --release --bin keeper --bin keeper-bench >/dev/null
pids() { cat "$@" 2>/dev/null | paste -sd, -; }
cleanup() {
  for p in $(pids "$WORK"/keeper/s*/pid "$WORK"/zk/*/zk.pid | tr , ' '); do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
BASE=23800 tools/ensemble.sh start 3 "$WORK/keeper" >/dev/null
bash "$ZK_SCRIPT" ensemble 23950 "$WORK/zk" >/dev/null
mode() { (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && timeout 2 cat <&3) 2>/dev/null | sed -n 's/^Mode: //p'; }
for hosts in $KEEPER_HOSTS $ZK_HOSTS; do
  for _ in $(seq 100); do
    modes=$(for h in ${hosts//,/ }; do mode "${h#*:}"; done | sort | paste -sd' ' -)
    [ "$modes" = "follower follower leader" ] && break
    sleep 0.2
  done
  [ "$modes" = "follower follower leader" ] || { echo "no ensemble at $hosts: $modes" >&2; exit 1; }
done
KP=$(pids "$WORK"/keeper/s*/pid)
ZP=$(pids "$WORK"/zk/*/zk.pid)
{
  echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), shared by the 6 servers and the client"
  echo "keeper: $(git rev-parse --short HEAD)$(git diff --quiet -- src || echo '+dirty') at $KEEPER_HOSTS (pids $KP)"
  echo "zookeeper: $(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null) at $ZK_HOSTS (pids $ZP)"
} >"$OUT/ensemble-machine.txt"
if [ "$WARM" -gt 0 ]; then
  target/release/keeper-bench compare --a "$KEEPER_HOSTS" --a-name keeper --b "$ZK_HOSTS" --b-name zookeeper \
    --workload "$WORKLOADS" --clients 16 --rounds 1 --warmup 0 --duration "$WARM" --no-progress >/dev/null
fi
for c in $CLIENTS; do
  target/release/keeper-bench compare --a "$KEEPER_HOSTS" --a-name keeper --a-pid "$KP" --b "$ZK_HOSTS" --b-name zookeeper --b-pid "$ZP" \
    --workload "$WORKLOADS" --clients "$c" --rounds "$ROUNDS" --warmup 1 --duration "$DUR" --no-progress >"$OUT/ensemble-c$c.txt"
  echo "== $c clients: $OUT/ensemble-c$c.txt"
  cat "$OUT/ensemble-c$c.txt"
done
{
  for p in ${KP//,/ }; do echo "keeper pid $p: $(awk '/VmRSS/ {print $2, $3}' "/proc/$p/status")"; done
  for p in ${ZP//,/ }; do echo "zookeeper pid $p: $(awk '/VmRSS/ {print $2, $3}' "/proc/$p/status")"; done
} | tee "$OUT/ensemble-rss.txt"
