#!/usr/bin/env bash
# A local keeper ensemble in one command: writes the configs, starts the
# servers on this machine (loopback), stops them.
#
#   tools/ensemble.sh start [N] [DIR]   N servers (3 or 5; default 3), data under DIR
#                                       (default ./keeper-ensemble); prints the connect string
#   tools/ensemble.sh status [DIR]      each server's mode (srvr)
#   tools/ensemble.sh stop [DIR]        stops them (SIGTERM, by the pids it wrote)
#   tools/ensemble.sh restart I [DIR]   kill -9 of server I (1-based), then a start on its data
#   tools/ensemble.sh restart-empty I [DIR]   the same with its data directory wiped (myid kept):
#                                       it rejoins empty and catches up from the leader
#
# Ports: server i (1-based) serves clients on BASE+i, peers on BASE+100+i
# (BASE=21800 unless set); the election port BASE+200+i is written, as
# zoo.cfg requires, and unused. Each server gets its own share of the CPUs
# (taskset), or one CPU each, round robin, when there are fewer CPUs than servers. KEEPER=path/to/keeper picks the binary
# (default target/release/keeper, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-}
BASE=${BASE:-21800}
KEEPER=${KEEPER:-target/release/keeper}
# The CPUs server I of N may use: a disjoint share of this machine's CPUs
# when there are enough, else one each, round robin (each keeper pins its
# cores to the CPUs it is allowed; servers left to choose would all take the same ones).
cpus_of() {
  local c
  c=$(nproc)
  if [ "$c" -ge "$2" ]; then
    echo "$(( ($1 - 1) * c / $2 ))-$(( $1 * c / $2 - 1 ))"
  else
    echo "$(( ($1 - 1) % c ))"
  fi
}
case "$cmd" in
start)
  n=${2:-3}
  dir=${3:-keeper-ensemble}
  [ "$n" = 3 ] || [ "$n" = 5 ] || { echo "an ensemble has 3 or 5 servers" >&2; exit 2; }
  [ -x "$KEEPER" ] || cargo build --release --bin keeper >/dev/null
  mkdir -p "$dir"
  servers=""
  for i in $(seq 1 "$n"); do
    servers+="server.$i=127.0.0.1:$((BASE + 100 + i)):$((BASE + 200 + i))"$'\n'
  done
  hosts=""
  for i in $(seq 1 "$n"); do
    mkdir -p "$dir/s$i/data"
    echo "$i" >"$dir/s$i/data/myid"
    printf 'tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n%s' \
      "$(realpath "$dir/s$i/data")" "$((BASE + i))" "$servers" >"$dir/s$i/zoo.cfg"
    taskset -c "$(cpus_of "$i" "$n")" "$KEEPER" serve --config "$dir/s$i/zoo.cfg" >"$dir/s$i/keeper.log" 2>&1 &
    echo $! >"$dir/s$i/pid"
    hosts+="${hosts:+,}127.0.0.1:$((BASE + i))"
  done
  echo "$hosts" >"$dir/connect"
  echo "started $n servers (logs in $dir/s*/keeper.log); connect string: $hosts"
  ;;
restart | restart-empty)
  i=${2:?which server (1-based)}
  dir=${3:-keeper-ensemble}
  n=$(find "$dir" -maxdepth 1 -name 's*' -type d | wc -l)
  [ -f "$dir/s$i/zoo.cfg" ] || { echo "no server $i in $dir" >&2; exit 2; }
  if [ -f "$dir/s$i/pid" ]; then
    pid=$(cat "$dir/s$i/pid")
    kill -9 "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  fi
  if [ "$cmd" = restart-empty ]; then
    find "$dir/s$i/data" -mindepth 1 -maxdepth 1 ! -name myid -exec rm -rf {} +
  fi
  taskset -c "$(cpus_of "$i" "$n")" "$KEEPER" serve --config "$dir/s$i/zoo.cfg" >>"$dir/s$i/keeper.log" 2>&1 &
  echo $! >"$dir/s$i/pid"
  echo "server $i restarted (pid $!)"
  ;;
status)
  dir=${2:-keeper-ensemble}
  for cfg in "$dir"/s*/zoo.cfg; do
    port=$(sed -n 's/^clientPort=//p' "$cfg")
    mode=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf srvr >&3 && timeout 2 cat <&3) 2>/dev/null | sed -n 's/^Mode: //p')
    echo "$(dirname "$cfg"): port $port: ${mode:-not serving}"
  done
  ;;
stop)
  dir=${2:-keeper-ensemble}
  for pidfile in "$dir"/s*/pid; do
    [ -f "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
  echo "stopped"
  ;;
*)
  echo "usage: tools/ensemble.sh start [3|5] [DIR] | status [DIR] | stop [DIR] | restart I [DIR] | restart-empty I [DIR]" >&2
  exit 2
  ;;
esac
