#!/usr/bin/env bash
# Real-client checks through the stock ZooKeeper command-line tools:
#   * zkCli.sh  (Java client, Debian package "zookeeper")
#   * cli_mt    (C client, Debian package "zookeeper-bin"), used in batch mode (-c CMD)
#
#   bash tests/clients/cli_tools.sh HOST:PORT
#
# Prints one line per check (PASS/FAIL); exits 0 only when every check passed.
# Each tool invocation is bounded with `timeout`. All nodes live under a unique
# root (/clitools-<pid>-<random>) that is removed at the end.
#
# Notes on the tools (same behaviour on Apache ZooKeeper 3.8):
#   * zkCli.sh runs one command per JVM and exits without closing its session, so an
#     ephemeral node it creates lives until the session times out.
#   * zkCli.sh also runs commands piped into it as one interactive session (`quit` ends it).
#   * cli_mt closes its session on exit, so its ephemeral node is gone right after.
#   * cli_mt's `create PATH` always stores the 3-byte value "new"; `exists` never
#     returns in batch mode, so `ls2` is used for stat.
set -u

HP=${1:?usage: cli_tools.sh HOST:PORT}
ZKCLI=${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}
CLI_MT=${CLI_MT:-/usr/lib/zookeeper/bin/cli_mt}
[ -x "$ZKCLI" ] || ZKCLI=$(dpkg -L zookeeper 2>/dev/null | grep '/zkCli.sh$' | head -1)
[ -x "$CLI_MT" ] || CLI_MT=$(dpkg -L zookeeper-bin 2>/dev/null | grep '/cli_mt$' | head -1)

ROOT="/clitools-$$-$RANDOM"
PASS=0
FAIL=0
OUT=""
RC=0

pass() { PASS=$((PASS + 1)); echo "PASS $1"; }
fail() { # NAME EXPECTED
  FAIL=$((FAIL + 1))
  echo "FAIL $1"
  echo "     expected: $2"
  echo "     seen (rc=$RC):"
  printf '%s\n' "$OUT" | head -80 | sed 's/^/       | /'
}

# zk ARGS...: one zkCli.sh command; output (minus JVM/SLF4J/watcher noise) in OUT, status in RC
zk() {
  OUT=$(timeout 30 "$ZKCLI" -server "$HP" "$@" 2>&1 </dev/null)
  RC=$?
  OUT=$(printf '%s\n' "$OUT" | grep -v -e '^SLF4J' -e '^Connecting to' -e '^WATCHER::' \
    -e 'WatchedEvent state:SyncConnected type:None path:null' -e '^$')
}

# cm CMD: one cli_mt batch command; output in OUT, status in RC
cm() {
  OUT=$(timeout 20 "$CLI_MT" -h "$HP" -c "$1" 2>&1 </dev/null)
  RC=$?
}

# expect NAME REGEX [RC]: OUT has a line matching REGEX (grep -E) and the exit status is RC (default 0)
expect() {
  local name=$1 re=$2 want_rc=${3:-0}
  if [ "$RC" -eq "$want_rc" ] && printf '%s\n' "$OUT" | grep -Eq -- "$re"; then
    pass "$name"
  else
    fail "$name" "a line matching /$re/ and exit status $want_rc"
  fi
}

# expect_fail NAME REGEX: OUT matches REGEX and the exit status is non-zero
expect_fail() {
  local name=$1 re=$2
  if [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] && printf '%s\n' "$OUT" | grep -Eq -- "$re"; then
    pass "$name"
  else
    fail "$name" "a line matching /$re/ and a non-zero exit status (not a timeout)"
  fi
}

# expect_absent NAME REGEX: no line of OUT matches REGEX (exit status must be 0)
expect_absent() {
  local name=$1 re=$2
  if [ "$RC" -eq 0 ] && ! printf '%s\n' "$OUT" | grep -Eq -- "$re"; then
    pass "$name"
  else
    fail "$name" "no line matching /$re/ and exit status 0"
  fi
}

echo "# server $HP, root $ROOT"
echo "# zkCli.sh: $ZKCLI"
echo "# cli_mt:   $CLI_MT"

# ---------------------------------------------------------------- zkCli.sh
Z="$ROOT"
zk create "$Z" rootdata
expect "zkCli create root" "^Created $Z\$"
if [ "$RC" -ne 0 ]; then
  echo "FAIL cannot create $Z; giving up"
  exit 1
fi

zk create "$Z/zk" v1
expect "zkCli create" "^Created $Z/zk\$"
zk create "$Z/zk" again
expect_fail "zkCli create existing -> NodeExists" "Node already exists: $Z/zk"
zk create "$Z/zk/child" c
expect "zkCli create child" "^Created $Z/zk/child\$"
zk create -s "$Z/zk/seq-" s
expect "zkCli create -s (sequence suffix)" "^Created $Z/zk/seq-0000000001\$"
zk create -e "$Z/zk/eph" e
expect "zkCli create -e" "^Created $Z/zk/eph\$"
zk stat "$Z/zk/eph"
expect "zkCli stat ephemeral: ephemeralOwner set" "^ephemeralOwner = 0x[0-9a-f]*[1-9a-f][0-9a-f]*\$"
# its owner session is still open (zkCli.sh exits without closing it); delete it from
# another session now so the checks below do not depend on the session timeout
zk delete "$Z/zk/eph"
expect_absent "zkCli delete another session's ephemeral" "Exception|Error|not exist"

zk get "$Z/zk"
expect "zkCli get" "^v1\$"
zk set "$Z/zk" v2-new
expect_absent "zkCli set" "Exception|Error|not exist"
zk get -s "$Z/zk"
expect "zkCli get -s: new data" "^v2-new\$"
expect "zkCli get -s: dataVersion = 1" "^dataVersion = 1\$"
expect "zkCli get -s: dataLength = 6" "^dataLength = 6\$"
zk set -v 0 "$Z/zk" stale
expect_fail "zkCli set -v stale -> BadVersion" "version No is not valid : $Z/zk"
zk set -v 1 "$Z/zk" v3
expect_absent "zkCli set -v current" "Exception|Error|not valid"
zk get "$Z/zk"
expect "zkCli get after versioned set" "^v3\$"

zk ls "$Z/zk"
expect "zkCli ls" "^\[child, seq-0000000001\]\$"
zk ls -s "$Z/zk"
expect "zkCli ls -s: children" "^\[child, seq-0000000001\]\$"
expect "zkCli ls -s: numChildren" "^numChildren = 2\$"
zk stat "$Z/zk"
expect "zkCli stat: dataVersion" "^dataVersion = 2\$"
expect "zkCli stat: cversion" "^cversion = 4\$"
expect "zkCli stat: numChildren" "^numChildren = 2\$"
expect "zkCli stat: dataLength" "^dataLength = 2\$"
expect "zkCli stat: persistent owner" "^ephemeralOwner = 0x0\$"
expect "zkCli stat: cZxid hex" "^cZxid = 0x[0-9a-f]+\$"

zk get "$Z/zk/missing"
expect_fail "zkCli get missing -> NoNode" "Node does not exist: $Z/zk/missing"
zk delete "$Z/zk"
expect_fail "zkCli delete non-empty -> NotEmpty" "Node not empty: $Z/zk"
zk delete -v 5 "$Z/zk/child"
expect_fail "zkCli delete -v stale -> BadVersion" "version No is not valid : $Z/zk/child"
zk delete "$Z/zk/child"
expect_absent "zkCli delete" "Exception|Error|not exist|not empty"
zk ls "$Z/zk"
expect "zkCli ls after delete" "^\[seq-0000000001\]\$"
zk deleteall "$Z/zk"
expect_absent "zkCli deleteall" "Exception|Error|not exist|not empty"
zk stat "$Z/zk"
expect_fail "zkCli stat after deleteall -> NoNode" "Node does not exist: $Z/zk"

# ---------------------------------------------------------------- zkCli.sh, one interactive session
# Commands piped into a single zkCli.sh session: watches (one-shot and persistent
# recursive), ephemerals of the session, digest auth + ACLs, container/TTL nodes, quotas.
I="$ROOT/isess"
DIGEST=$(/usr/bin/python3 -c 'import base64,hashlib; print(base64.b64encode(hashlib.sha1(b"bob:pw").digest()).decode())')
OUT=$( (printf '%s\n' \
  "create $I x" \
  "create -e $I/eph e" \
  "getEphemerals $I" \
  "addWatch -m PERSISTENT_RECURSIVE $I/pw" \
  "create $I/pw a" \
  "create $I/pw/k b" \
  "set $I/pw/k c" \
  "delete $I/pw/k" \
  "get -w $I" \
  "set $I y" \
  "ls -w $I" \
  "create $I/kid" \
  "addauth digest bob:pw" \
  "create $I/secret s auth::cdrwa" \
  "getAcl $I/secret" \
  "get $I/secret" \
  "create -c $I/cont" \
  "create -t 100000 $I/ttl t" \
  "create $I/q abc" \
  "create $I/q/c 12345" \
  "setquota -n 10 $I/q" \
  "listquota $I/q" \
  "create $I/q/d 1234567" \
  "listquota $I/q" \
  "getAllChildrenNumber $I" \
  "ls -R $I"
  sleep 1; echo quit) | timeout 40 "$ZKCLI" -server "$HP" 2>&1)
RC=$?
OUT=$(printf '%s\n' "$OUT" | grep -v -e '^SLF4J' -e '^WATCHER::' -e '^$')
expect "zkCli session: create" "^Created $I\$"
expect "zkCli session: getEphemerals lists own ephemeral" "^\[$I/eph\]\$"
for ev in "NodeCreated path:$I/pw" "NodeCreated path:$I/pw/k" "NodeDataChanged path:$I/pw/k" "NodeDeleted path:$I/pw/k"; do
  expect "zkCli session: persistent recursive watch: $ev" "type:$ev\$"
done
expect "zkCli session: get -w fires NodeDataChanged" "type:NodeDataChanged path:$I\$"
expect "zkCli session: ls -w fires NodeChildrenChanged" "type:NodeChildrenChanged path:$I\$"
expect "zkCli session: getAcl shows digest of bob:pw" "^'digest,'bob:$DIGEST\$"
expect "zkCli session: getAcl perms" "^: cdrwa\$"
expect "zkCli session: authed get of protected node" "^s\$"
expect "zkCli session: create -c container" "^Created $I/cont\$"
expect "zkCli session: create -t TTL" "^Created $I/ttl\$"
expect "zkCli session: listquota limits" "^Output quota for $I/q count=10,bytes=-1"
expect "zkCli session: quota stat after setquota (2 nodes, 8 bytes)" "^Output stat for $I/q count=2,bytes=8\$"
expect "zkCli session: quota stat tracks a create (3 nodes, 15 bytes)" "^Output stat for $I/q count=3,bytes=15\$"
expect "zkCli session: getAllChildrenNumber" "^9\$"
expect "zkCli session: ls -R" "^$I/q/d\$"
expect_absent "zkCli session: no exceptions" "Exception|Insufficient permission|Node does not exist"

zk get "$I/secret"
expect_fail "zkCli: protected node without auth -> NoAuth" "Insufficient permission : $I/secret"
zk stat "$I/eph"
expect_fail "zkCli: session's ephemeral gone after quit" "Node does not exist: $I/eph"
zk delquota "$I/q"
expect_absent "zkCli: delquota" "Exception|Error|not exist"
zk listquota "$I/q"
expect "zkCli: listquota after delquota" "quota for $I/q does not exist"

# ---------------------------------------------------------------- cli_mt
C="$ROOT/cmt"
cm "create $C"
expect "cli_mt create" "^\[$C\]: rc = 0\$"
expect "cli_mt create: name" "name = $C\$"
cm "create $C"
expect "cli_mt create existing -> ZNODEEXISTS (-110)" "^\[$C\]: rc = -110\$"
cm "get $C"
expect "cli_mt get: rc" "^$C: rc = 0\$"
expect "cli_mt get: value_len" "value_len = 3\$"
expect "cli_mt get: value" "^new\$"
expect "cli_mt get: version" "version=0"
cm "set $C world"
expect "cli_mt set: rc" "^$C: rc = 0"
expect "cli_mt set: returned version" "version=1"
cm "get $C"
expect "cli_mt get after set: value" "^world\$"
expect "cli_mt get after set: value_len" "value_len = 5\$"
cm "create $C/kid"
expect "cli_mt create child" "^\[$C/kid\]: rc = 0\$"
cm "create +s $C/seq-"
expect "cli_mt create +s (sequence suffix)" "name = $C/seq-0000000001\$"
cm "create +e $C/eph"
expect "cli_mt create +e" "^\[$C/eph\]: rc = 0\$"
cm "ls $C"
expect "cli_mt ls: rc" "^$C: rc = 0\$"
for kid in kid seq-0000000001; do
  expect "cli_mt ls: lists $kid" "^[[:space:]]+$kid\$"
done
# cli_mt closes its session when it exits, so its ephemeral node is already gone
expect_absent "cli_mt ls: ephemeral gone after its session closed" "^[[:space:]]+eph\$"
cm "ls2 $C"
expect "cli_mt ls2 (stat): version" "version=1"
expect "cli_mt ls2 (stat): persistent owner" "ephemeralOwner = 0\$"
cm "ls $ROOT"
expect "cli_mt ls root lists cmt" "^[[:space:]]+cmt\$"
cm "get $C/missing"
expect "cli_mt get missing -> ZNONODE (-101)" "^$C/missing: rc = -101\$"
cm "delete $C"
expect "cli_mt delete non-empty -> ZNOTEMPTY (-111)" "^$C: rc = -111\$"
for kid in kid seq-0000000001; do
  cm "delete $C/$kid"
  expect "cli_mt delete $kid" "^$C/$kid: rc = 0\$"
done
cm "ls $C"
expect_absent "cli_mt ls after deletes is empty" "^[[:space:]]+(kid|seq-0000000001|eph)\$"
cm "delete $C"
expect "cli_mt delete" "^$C: rc = 0\$"
cm "get $C"
expect "cli_mt get after delete -> ZNONODE (-101)" "^$C: rc = -101\$"

# ---------------------------------------------------------------- cleanup
# (interactive, to authenticate for the digest-protected node)
OUT=$(printf '%s\n' "addauth digest bob:pw" "deleteall $ROOT" quit | timeout 30 "$ZKCLI" -server "$HP" 2>&1)
RC=$?
expect_absent "cleanup: deleteall root" "Exception|Insufficient permission"
zk stat "$ROOT"
expect_fail "cleanup: root gone" "Node does not exist: $ROOT"

echo "# $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
