# Sourced by tools/perf.sh and tools/scaling.sh.
# serving PORT: waits until the server on 127.0.0.1:PORT answers `srvr` with
# a mode (it has recovered and serves); fails after 60 s.
serving() {
  for _ in $(seq 1 1200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && timeout 1 cat <&3) 2>/dev/null | grep -q '^Mode:'; then return 0; fi
    sleep 0.05
  done
  echo "server on port $1 did not serve within 60 s" >&2; return 1
}
