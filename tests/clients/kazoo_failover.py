#!/usr/bin/python3
"""kazoo across an ensemble's fail-over (python3-kazoo from Debian).

    /usr/bin/python3 tests/clients/kazoo_failover.py HOST:PORT,HOST:PORT,...

Talks to the test that runs it over stdin/stdout:
  1. connects to the first host of the connect string (hosts are not
     shuffled), creates an ephemeral node and writes, then prints
     "CONNECTED <port>" with the port of the server it uses;
  2. waits for a line "KILLED" on stdin (the test has killed that server);
  3. writes again through the same session (kazoo reconnects to another
     host of the connect string), and checks that the session id and the
     ephemeral survived, that the session was never lost, and that every
     write acknowledged before and after is there on every server left.
Prints one PASS/FAIL line per check and exits 0 only when all passed. A
watchdog aborts the run (exit 3) after 50 s.
"""

import logging
import os
import sys
import time

from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState
from kazoo.retry import KazooRetry

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import FAILED, check, start_watchdog  # noqa: E402

logging.basicConfig(level=logging.DEBUG if os.environ.get("KAZOO_SUITE_TRACE") else logging.CRITICAL)

if len(sys.argv) != 2:
    sys.exit("usage: kazoo_failover.py HOST:PORT,HOST:PORT,...")

HOSTS = sys.argv[1]
ROOT = "/failover-%d" % os.getpid()
WRITES = 20
start_watchdog(50.0)

states = []
retry = KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5, deadline=20.0)
zk = KazooClient(hosts=HOSTS, timeout=10.0, randomize_hosts=False, connection_retry=dict(max_tries=-1, delay=0.05, max_delay=0.5))
zk.add_listener(lambda state: states.append(state))
zk.start(timeout=15)
session = zk.client_id[0]
zk.create(ROOT)
zk.create(ROOT + "/ephemeral", b"mine", ephemeral=True)
for i in range(WRITES):
    zk.create("%s/before-%d" % (ROOT, i), b"%d" % i)
port = zk._connection._socket.getpeername()[1]
print("CONNECTED %d" % port, flush=True)

line = sys.stdin.readline().strip()
if line != "KILLED":
    sys.exit("expected KILLED on stdin, got %r" % line)

started = time.monotonic()
# A create retried after a connection loss may already have been applied:
# set_data on a node made before the kill is idempotent, so retry that first.
retry(zk.set, ROOT + "/before-0", b"again")
resumed_ms = (time.monotonic() - started) * 1000
for i in range(WRITES):
    retry(zk.ensure_path, "%s/after-%d" % (ROOT, i))
new_port = zk._connection._socket.getpeername()[1]
check("kazoo moved to another server (%d -> %d), first write %.0f ms after the kill" % (port, new_port, resumed_ms), new_port != port)
check("the session id survived the fail-over", zk.client_id[0] == session, "0x%x became 0x%x" % (session, zk.client_id[0]))
check("the session was never lost", KazooState.LOST not in states, str(states))
check("the ephemeral survived the fail-over", zk.exists(ROOT + "/ephemeral") is not None)

expected = {"ephemeral"} | {"before-%d" % i for i in range(WRITES)} | {"after-%d" % i for i in range(WRITES)}
for host in HOSTS.split(","):
    if int(host.rsplit(":", 1)[1]) == port:
        continue
    other = KazooClient(hosts=host, timeout=10.0)
    other.start(timeout=15)
    other.sync(ROOT)
    children = set(other.get_children(ROOT))
    check("%s has every acknowledged write and the ephemeral" % host, children == expected, "missing %s" % sorted(expected - children))
    other.stop()
    other.close()

ephemeral_owner = zk.exists(ROOT + "/ephemeral").ephemeralOwner
check("the ephemeral still belongs to the session", ephemeral_owner == session)
zk.stop()
zk.close()
survivor = [h for h in HOSTS.split(",") if int(h.rsplit(":", 1)[1]) != port][0]
other = KazooClient(hosts=survivor, timeout=10.0)
other.start(timeout=15)
other.sync(ROOT)
check("the closed session's ephemeral is gone", other.exists(ROOT + "/ephemeral") is None)
other.stop()
other.close()
sys.exit(1 if FAILED else 0)
