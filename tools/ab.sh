#!/usr/bin/env bash
# A/B of two keeper builds side by side on this machine: the working tree's
# release build (A) against another keeper binary (B), with keeper-bench
# compare alternating them round after round. What PERF.md's "same speed"
# checks of a refactor use.
#
#   tools/ab.sh B_BINARY [keeper-bench compare options...]
#   e.g. tools/ab.sh /tmp/keeper-base --workload get,set,create,mixed --clients 16 --rounds 4
#
# B_BINARY: build it from the commit to compare with (`git worktree add`,
# `cargo build --release`), and keep a copy. A_BIN=PATH replaces A (an A/A
# run of one binary against itself shows the noise and any order bias).
# Results go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] && [ -x "$1" ] || { echo "usage: tools/ab.sh B_BINARY [compare options]" >&2; exit 2; }
B_BIN=$(realpath "$1"); shift
A_PORT=25181
B_PORT=25281
WORK=$(mktemp -d /tmp/keeper-ab.XXXXXX)
cargo build --release --bin keeper --bin keeper-bench >/dev/null
# shellcheck source=tools/serving.sh
source tools/serving.sh
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
for port in $A_PORT $B_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "port $port is already in use: stop that server first" >&2; exit 1; fi
done
start() { # NAME BINARY PORT
  mkdir -p "$WORK/$1"
  printf 'tickTime=2000\ndataDir=%s/%s/data\nclientPort=%s\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n' "$WORK" "$1" "$3" >"$WORK/$1/zoo.cfg"
  "$2" serve --config "$WORK/$1/zoo.cfg" >"$WORK/$1/log" 2>&1 &
  PIDS+=($!)
  serving "$3" || { cat "$WORK/$1/log" >&2; exit 1; }
}
A_BIN=${A_BIN:-target/release/keeper}
start a "$A_BIN" $A_PORT
start b "$B_BIN" $B_PORT
echo "A: $A_BIN at $(git rev-parse --short HEAD)$(git diff --quiet -- src || echo '+dirty')   B: $B_BIN"
echo "machine: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), client and both servers sharing it"
target/release/keeper-bench compare --a 127.0.0.1:$A_PORT --a-name A --a-pid "${PIDS[0]}" \
  --b 127.0.0.1:$B_PORT --b-name B --b-pid "${PIDS[1]}" --no-progress "$@"
