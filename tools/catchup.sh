#!/usr/bin/env bash
# Catch-up of a follower NODES znodes behind (default 1,000,000): keeper's
# 3-server ensemble against ZooKeeper 3.8's, on this machine, in the same run.
#
#   tools/catchup.sh                 # NODES=1000000 SIZE=100 OUT=perf-results
#
# For each: start the ensemble, populate NODES znodes of SIZE bytes through
# all three servers, wait until every server has applied the same zxid, then
# kill -9 a follower, wipe its data directory (myid kept), start it again and
# time from that start until its `srvr` shows the leader's zxid (the whole
# tree streamed to it: keeper sends a snapshot in checksummed chunks,
# ZooKeeper a SNAP). Prints the time, the follower's RSS after catching up
# and the ensemble's zxid. The servers and the client share this machine's CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${NODES:-1000000}
SIZE=${SIZE:-100}
OUT=${OUT:-perf-results}
ZK_SCRIPT=${ZK_SCRIPT:-../shared/reference/zookeeper.sh}
[ -f "$ZK_SCRIPT" ] || { echo "no ZooKeeper script at $ZK_SCRIPT: set ZK_SCRIPT" >&2; exit 1; }
for port in 23801 23802 23803 23901 23902 23903 23950 23951 23952; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "port $port is already in use: stop that server first" >&2; exit 1; fi
done
WORK=$(mktemp -d /tmp/keeper-catchup.XXXXXX)
mkdir -p "$OUT"
cargo build --release --bin keeper --bin keeper-bench >/dev/null
cleanup() {
  for p in $(cat "$WORK"/keeper/s*/pid "$WORK"/zk/*/zk.pid 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
word() { (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf '%s' "$2" >&3 && timeout 5 cat <&3) 2>/dev/null || true; }
field() { word "$1" srvr | sed -n "s/^$2: //p"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_same_zxid PORT...: until every server answers with one zxid; prints it
wait_same_zxid() {
  for _ in $(seq 600); do
    zs=$(for p in "$@"; do field "$p" Zxid; done | sort -u)
    if [ "$(echo "$zs" | wc -l)" = 1 ] && [ -n "$zs" ]; then echo "$zs"; return; fi
    sleep 0.5
  done
  echo "servers never agreed on a zxid" >&2; exit 1
}
# measure NAME PORTS RESTART_CMD PID_FILE_OF_FOLLOWER...: populate, wipe a follower, time its catch-up
measure() {
  local name=$1 ports=$2 hosts="" leader_port="" follower=""
  for p in $ports; do hosts+="${hosts:+,}127.0.0.1:$p"; done
  target/release/keeper-bench run --target "$hosts" --workload populate --nodes "$NODES" --size "$SIZE" --clients 16 --pipeline 32 --no-progress >"$WORK/populate-$name.txt"
  zxid=$(wait_same_zxid $ports)
  for p in $ports; do
    if [ "$(field "$p" Mode)" = leader ]; then leader_port=$p; elif [ -z "$follower" ]; then follower=$p; fi
  done
  echo "$name: $(field "$leader_port" 'Node count') nodes at zxid $zxid; wiping the follower on port $follower" >&2
  t0=$(now_ms)
  restart_empty "$name" "$follower"
  while [ "$(field "$follower" Zxid)" != "$zxid" ]; do
    [ $(( $(now_ms) - t0 )) -lt 600000 ] || { echo "$name: the follower did not catch up within 600 s" >&2; exit 1; }
    sleep 0.05
  done
  t1=$(now_ms)
  nodes=$(field "$follower" 'Node count')
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$(follower_pid "$name" "$follower")/status")
  echo "$name: follower caught up $NODES znodes of $SIZE bytes (zxid $zxid, $nodes nodes) in $((t1 - t0)) ms from its start; its RSS after: $rss kB"
}
restart_empty() { # NAME PORT
  case $1 in
    keeper) BASE=23800 tools/ensemble.sh restart-empty $(( $2 - 23800 )) "$WORK/keeper" >/dev/null ;;
    zookeeper)
      local d="$WORK/zk/$(( $2 - 23950 + 1 ))"
      kill -9 "$(cat "$d/zk.pid")"; sleep 0.5
      find "$d/data" -mindepth 1 -maxdepth 1 ! -name myid -exec rm -rf {} +
      # As zookeeper.sh starts each server of its ensemble.
      setsid java -Xmx1g -cp "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar" -Dzookeeper.log.dir="$d" -Dzookeeper.root.logger=INFO,CONSOLE \
        -Dzookeeper.extendedTypesEnabled=true org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" >>"$d/zookeeper.log" 2>&1 </dev/null &
      echo $! >"$d/zk.pid"
      ;;
  esac
}
follower_pid() { # NAME PORT
  case $1 in
    keeper) cat "$WORK/keeper/s$(( $2 - 23800 ))/pid" ;;
    zookeeper) cat "$WORK/zk/$(( $2 - 23950 + 1 ))/zk.pid" ;;
  esac
}
{
  echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), shared by the 3 servers and the client"
  echo "keeper: $(git rev-parse --short HEAD)$(git diff --quiet -- src || echo '+dirty'); zookeeper: $(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null)"
  BASE=23800 tools/ensemble.sh start 3 "$WORK/keeper" >/dev/null
  wait_same_zxid 23801 23802 23803 >/dev/null
  measure keeper "23801 23802 23803"
  for p in $(cat "$WORK"/keeper/s*/pid); do kill -9 "$p" 2>/dev/null || true; done
  bash "$ZK_SCRIPT" ensemble 23950 "$WORK/zk" >/dev/null
  measure zookeeper "23950 23951 23952"
} | tee "$OUT/catchup.txt"
