#!/usr/bin/python3
"""kazoo against a server in read-only mode (python3-kazoo from Debian).

    /usr/bin/python3 tests/clients/kazoo_read_only.py HOST:PORT PATH DATA

The server at HOST:PORT is cut off from its quorum with
readonlymode.enabled=true. Checks that a client with read_only=True
connects (state CONNECTED_RO), reads PATH (written before the cut) and gets
DATA, that its writes and syncs are refused with NotReadOnly, and that a
client without read_only gets no session. Prints one PASS/FAIL line per
check; exits 0 only when all passed.
"""

import logging
import os
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KeeperState

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import FAILED, check, start_watchdog  # noqa: E402

logging.basicConfig(level=logging.DEBUG if os.environ.get("KAZOO_SUITE_TRACE") else logging.CRITICAL)

if len(sys.argv) != 4:
    sys.exit("usage: kazoo_read_only.py HOST:PORT PATH DATA")
HOST, PATH, DATA = sys.argv[1], sys.argv[2], sys.argv[3].encode()
start_watchdog(40.0)

def refused(call):
    try:
        call()
    except NotReadOnlyCallError:
        return True
    except Exception as e:  # noqa: BLE001 - any other answer is the failure being reported
        return e
    return False


states = []
ro = KazooClient(hosts=HOST, timeout=10.0, read_only=True)
ro.add_listener(lambda s: states.append(s))
ro.start(timeout=15)
check("a read-only client connects", ro.client_state == KeeperState.CONNECTED_RO, ro.client_state)
data, _ = ro.get(PATH)
check("it reads what was committed before the cut", data == DATA, data)
check("a create is refused with NotReadOnly", refused(lambda: ro.create(PATH + "-ro", b"x")) is True)
check("a setData is refused with NotReadOnly", refused(lambda: ro.set(PATH, b"x")) is True)
check("a sync is refused with NotReadOnly", refused(lambda: ro.sync(PATH)) is True)
check("reads go on after the refusals", ro.get(PATH)[0] == DATA)
ro.stop()
ro.close()

rw = KazooClient(hosts=HOST, timeout=4.0, connection_retry=dict(max_tries=2, delay=0.1))
try:
    rw.start(timeout=4)
    check("a client that does not accept read-only gets no session", False, "it connected")
except KazooTimeoutError:
    check("a client that does not accept read-only gets no session", True)
finally:
    rw.stop()
    rw.close()
sys.exit(1 if FAILED else 0)
