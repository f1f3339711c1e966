#!/usr/bin/python3
"""Real-client checks through kazoo (python3-kazoo from Debian).

    /usr/bin/python3 tests/clients/kazoo_suite.py HOST:PORT

Prints one PASS/FAIL line per check and exits 0 only when every check passed.
Everything lives under a unique root (/kazoo-<pid>-<random>) that is deleted at
the end. A watchdog aborts the run (exit 3) if it takes longer than 55 s.
"""

import logging
import os
import random
import socket
import sys
import threading
import time
import traceback

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import start_watchdog  # noqa: E402

# kazoo logs reconnects and expected session errors as warnings; keep stdout one line per check
logging.basicConfig(level=logging.DEBUG if os.environ.get("KAZOO_SUITE_TRACE") else logging.CRITICAL)

if len(sys.argv) != 2:
    sys.exit("usage: kazoo_suite.py HOST:PORT")

HOSTS = sys.argv[1]
ROOT = "/kazoo-%d-%d" % (os.getpid(), random.randint(0, 1 << 30))
WAIT = 5.0  # seconds to wait for any asynchronous effect (watch, recipe hand-off)
DEADLINE = 55.0

RESULTS = []
CLIENTS = []


start_watchdog(DEADLINE)


def client(**kw):
    zk = KazooClient(hosts=HOSTS, timeout=10.0, **kw)
    zk.start(timeout=10)
    CLIENTS.append(zk)
    return zk


def stop(zk):
    try:
        zk.stop()
        zk.close()
    except Exception:
        pass


def wait_for(pred, timeout=WAIT, step=0.02):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def eq(seen, expected, what=""):
    if seen != expected:
        raise AssertionError("%s: expected %r, seen %r" % (what, expected, seen))


def raises(exc, fn, *a, **kw):
    try:
        r = fn(*a, **kw)
    except exc:
        return
    except Exception as e:  # wrong error
        raise AssertionError("expected %s, got %s: %s" % (exc.__name__, type(e).__name__, e))
    raise AssertionError("expected %s, call returned %r" % (exc.__name__, r))


def check(name):
    def deco(fn):
        t0 = time.time()
        try:
            fn()
            RESULTS.append((name, True))
            print("PASS %-55s %.2fs" % (name, time.time() - t0), flush=True)
        except Exception as e:
            RESULTS.append((name, False))
            print("FAIL %-55s %.2fs  %s: %s" % (name, time.time() - t0, type(e).__name__, e), flush=True)
            if os.environ.get("KAZOO_SUITE_TRACE"):
                traceback.print_exc()
        return fn
    return deco


class Proxy(object):
    """TCP proxy in front of the server, to cut a client's connection (not its session)."""

    def __init__(self, target):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.refuse = False
        self.conns = []
        self.accepted = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if self.refuse:
                c.close()
                continue
            try:
                u = socket.create_connection(self.target, timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
                self.accepted += 1
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Drop every proxied connection and refuse new ones until resume()."""
        self.refuse = True
        with self.lock:
            conns, self.conns = self.conns, []
        for x in conns:
            try:
                x.shutdown(socket.SHUT_RDWR)
                x.close()
            except OSError:
                pass

    def resume(self):
        self.refuse = False

    def close(self):
        self.cut()
        self.lsock.close()


def P(*parts):
    return "/".join((ROOT,) + parts)


print("# server %s, root %s" % (HOSTS, ROOT), flush=True)
try:
    zk = client()
    zk2 = client()
except Exception as e:
    print("FAIL connect: %s: %s" % (type(e).__name__, e))
    sys.exit(1)


@check("connect: two sessions, distinct ids")
def _():
    assert zk.connected and zk2.connected, "not connected"
    assert zk.client_id[0] != zk2.client_id[0], "same session id %x" % zk.client_id[0]
    zk.create(ROOT, b"root")
    eq(zk2.get(ROOT)[0], b"root", "root data seen by second client")


# ---------------------------------------------------------------- basic ops
@check("create/get: data, stat, NodeExistsError")
def _():
    p = P("basic")
    eq(zk.create(p, b"v0"), p, "create return")
    data, st = zk.get(p)
    eq(data, b"v0", "data")
    eq((st.version, st.cversion, st.aversion), (0, 0, 0), "versions")
    eq(st.dataLength, 2, "dataLength")
    eq(st.numChildren, 0, "numChildren")
    eq(st.ephemeralOwner, 0, "ephemeralOwner")
    assert st.czxid == st.mzxid and st.czxid > 0, "czxid/mzxid %r" % (st,)
    raises(NodeExistsError, zk2.create, p, b"again")
    raises(NoNodeError, zk.create, P("nope", "child"), b"")
    raises(NoNodeError, zk.get, P("nope"))


@check("create include_data=True (create2) returns stat")
def _():
    p = P("c2")
    path, st = zk.create(p, b"abc", include_data=True)
    eq(path, p, "path")
    eq(st.dataLength, 3, "dataLength")
    eq(st.version, 0, "version")
    eq(zk.exists(p), st, "stat from exists")


@check("create makepath")
def _():
    p = P("mk", "a", "b", "c")
    eq(zk.create(p, b"deep", makepath=True), p, "create return")
    eq(zk2.get(p)[0], b"deep", "deep data")
    eq(zk.get_children(P("mk", "a")), ["b"], "intermediate children")
    eq(zk.get(P("mk", "a"))[0], b"", "intermediate data")
    zk.ensure_path(P("mk", "a", "b", "c"))  # already there: no error


@check("create sequence: counters per parent, 10 digits")
def _():
    base = P("seq")
    zk.create(base)
    a = zk.create(base + "/n-", b"", sequence=True)
    b = zk2.create(base + "/n-", b"", sequence=True)
    zk.create(base + "/plain")
    c = zk.create(base + "/x-", b"", sequence=True, ephemeral=True)
    eq([a, b, c], [base + "/n-0000000000", base + "/n-0000000001", base + "/x-0000000003"], "names")
    eq(zk.exists(c).ephemeralOwner, zk.client_id[0], "ephemeral sequential owner")
    eq(sorted(zk.get_children(base)), ["n-0000000000", "n-0000000001", "plain", "x-0000000003"], "children")


@check("create ephemeral: owner, no children allowed")
def _():
    p = P("eph")
    zk2.create(p, b"e", ephemeral=True)
    st = zk.exists(p)
    eq(st.ephemeralOwner, zk2.client_id[0], "ephemeralOwner")
    raises(NoChildrenForEphemeralsError, zk2.create, p + "/kid", b"")


@check("set/get with versions, BadVersionError")
def _():
    p = P("ver")
    zk.create(p, b"a")
    st = zk.set(p, b"bb", version=0)
    eq(st.version, 1, "version after set")
    eq(st.dataLength, 2, "dataLength after set")
    raises(BadVersionError, zk2.set, p, b"stale", version=0)
    eq(zk2.get(p)[0], b"bb", "data unchanged by stale set")
    st = zk2.set(p, b"ccc")  # version -1: unconditional
    eq(st.version, 2, "version after unconditional set")
    assert st.mzxid > st.czxid, "mzxid %d not above czxid %d" % (st.mzxid, st.czxid)
    data, st = zk.get(p)
    eq((data, st.version), (b"ccc", 2), "get after sets")
    raises(BadVersionError, zk.delete, p, version=1)
    zk.delete(p, version=2)
    eq(zk.exists(p), None, "exists after versioned delete")
    raises(NoNodeError, zk.set, p, b"x")


@check("delete: NotEmptyError, recursive")
def _():
    p = P("tree")
    for q in ("a/x", "a/y/z", "b"):
        zk.create(p + "/" + q, b"", makepath=True)
    raises(NotEmptyError, zk.delete, p)
    zk.delete(p, recursive=True)
    eq(zk.exists(p), None, "exists after recursive delete")
    eq("tree" in zk2.get_children(ROOT), False, "tree listed by second client")
    raises(NoNodeError, zk.delete, p)


@check("exists watch: created, changed, deleted")
def _():
    p = P("xw")
    events = []
    eq(zk.exists(p, watch=events.append), None, "exists before create")
    zk2.create(p, b"1")
    assert wait_for(lambda: len(events) >= 1), "no CREATED event"
    eq((events[0].type, events[0].path), (EventType.CREATED, p), "first event")
    assert zk.exists(p, watch=events.append) is not None
    zk2.set(p, b"2")
    assert wait_for(lambda: len(events) >= 2), "no CHANGED event"
    eq((events[1].type, events[1].path), (EventType.CHANGED, p), "second event")
    zk.exists(p, watch=events.append)
    zk2.delete(p)
    assert wait_for(lambda: len(events) >= 3), "no DELETED event"
    eq((events[2].type, events[2].path), (EventType.DELETED, p), "third event")
    time.sleep(0.2)
    eq(len(events), 3, "watches are one-shot: event count")


@check("get watch: data change fires once")
def _():
    p = P("gw")
    zk.create(p, b"1")
    events = []
    eq(zk2.get(p, watch=events.append)[0], b"1", "data")
    zk.set(p, b"2")
    zk.set(p, b"3")
    assert wait_for(lambda: len(events) >= 1), "no CHANGED event"
    time.sleep(0.2)
    eq([(e.type, e.path) for e in events], [(EventType.CHANGED, p)], "events")


@check("get_children watch, include_data")
def _():
    p = P("cw")
    zk.create(p)
    events = []
    eq(zk.get_children(p, watch=events.append), [], "children before")
    zk2.create(p + "/k1")
    assert wait_for(lambda: len(events) >= 1), "no CHILD event"
    eq((events[0].type, events[0].path), (EventType.CHILD, p), "event")
    kids, st = zk.get_children(p, include_data=True, watch=events.append)
    eq(kids, ["k1"], "children")
    eq((st.numChildren, st.cversion), (1, 1), "numChildren/cversion")
    zk2.set(p + "/k1", b"data change is not a child event")
    time.sleep(0.2)
    eq(len(events), 1, "child watch fired on a child's data change")
    zk2.delete(p + "/k1")
    assert wait_for(lambda: len(events) >= 2), "no CHILD event on delete"
    eq(events[1].type, EventType.CHILD, "event on delete")
    st = zk.exists(p)
    eq((st.numChildren, st.cversion), (0, 2), "numChildren/cversion after delete")


@check("transaction commit: create/set/check/delete")
def _():
    p = P("txn")
    zk.create(p, b"old")
    zk.create(p + "-gone", b"")
    t = zk.transaction()
    t.create(p + "/a", b"A")
    t.create(p + "/s-", b"S", sequence=True)
    t.set_data(p, b"new", version=0)
    t.check(p, 1)
    t.delete(p + "-gone")
    res = t.commit()
    eq(len(res), 5, "result count")
    eq(res[0], p + "/a", "create result")
    eq(res[1], p + "/s-0000000001", "sequential create result")
    eq(res[2].version, 1, "set_data result version")
    eq(res[3], True, "check result")
    eq(res[4], True, "delete result")
    eq(zk2.get(p)[0], b"new", "data after commit")
    eq(sorted(zk2.get_children(p)), ["a", "s-0000000001"], "children after commit")
    eq(zk2.exists(p + "-gone"), None, "deleted in txn")


@check("transaction failure: rolled back, per-op errors")
def _():
    p = P("txnfail")
    zk.create(p, b"keep")
    t = zk.transaction()
    t.create(p + "/new", b"")
    t.set_data(p, b"changed")
    t.check(p, 7)  # wrong version: the failing op
    t.create(p + "/other", b"")
    res = t.commit()
    eq(len(res), 4, "result count")
    eq(type(res[0]), RolledBackError, "op 0")
    eq(type(res[1]), RolledBackError, "op 1")
    eq(type(res[2]), BadVersionError, "op 2 (the failing check)")
    # ZooKeeper reports the ops after the failing one as RuntimeInconsistency (-2)
    eq(type(res[3]), RuntimeInconsistency, "op 3 (after the failing op)")
    eq(zk.get(p)[0], b"keep", "data unchanged")
    eq(zk.get_children(p), [], "no children created")
    t = zk2.transaction()
    t.delete(p + "/missing")
    res = t.commit()
    eq([type(r) for r in res], [NoNodeError], "single failing delete")


@check("ACL digest: NoAuthError without auth, works after add_auth")
def _():
    p = P("acl")
    acl = make_digest_acl("alice", "secret", all=True)
    authed = client(auth_data=[("digest", "alice:secret")])
    authed.create(p, b"private", acl=[acl])
    acls, st = authed.get_acls(p)
    eq(len(acls), 1, "acl count")
    eq((acls[0].id.scheme, acls[0].id.id, acls[0].perms), (acl.id.scheme, acl.id.id, acl.perms), "acl")
    eq(st.aversion, 0, "aversion")
    eq(authed.get(p)[0], b"private", "owner reads")
    other = client()
    assert other.exists(p) is not None, "exists needs no permission"
    raises(NoAuthError, other.get, p)
    raises(NoAuthError, other.set, p, b"x")
    raises(NoAuthError, other.create, p + "/kid", b"")
    raises(NoAuthError, other.get_children, p)
    wrong = client()
    wrong.add_auth("digest", "alice:wrong")
    raises(NoAuthError, wrong.get, p)
    other.add_auth("digest", "alice:secret")
    eq(other.get(p)[0], b"private", "read after add_auth")
    other.set(p, b"shared")
    eq(authed.get(p)[0], b"shared", "write after add_auth")
    # widen the ACL: now anyone can read
    authed.set_acls(p, OPEN_ACL_UNSAFE, version=0)
    eq(wrong.get(p)[0], b"shared", "read after set_acls open")
    eq(wrong.get_acls(p)[1].aversion, 1, "aversion after set_acls")
    for c in (authed, other, wrong):
        stop(c)


@check("ephemeral removed when owning client stops; watcher told")
def _():
    p = P("owned")
    owner = client()
    owner.create(p, b"", ephemeral=True)
    events = []
    assert zk.exists(p, watch=events.append) is not None, "ephemeral not visible"
    stop(owner)
    assert wait_for(lambda: len(events) >= 1), "no DELETED event after owner stopped"
    eq((events[0].type, events[0].path), (EventType.DELETED, p), "event")
    eq(zk.exists(p), None, "exists after owner stopped")


@check("pipelined async ops: replies in order")
def _():
    base = P("pipe")
    zk.create(base)
    creates = [zk.create_async(base + "/n-", b"%d" % i, sequence=True) for i in range(200)]
    names = [a.get(timeout=10) for a in creates]
    eq(names, [base + "/n-%010d" % i for i in range(200)], "sequential names in request order")
    gets = [zk2.get_async(n) for n in names]
    eq([g.get(timeout=10)[0] for g in gets], [b"%d" % i for i in range(200)], "data")
    sets = [zk.set_async(base, b"%d" % i) for i in range(50)]
    eq([a.get(timeout=10).version for a in sets], list(range(1, 51)), "versions of pipelined sets")


@check("large value (900 KB) round trip")
def _():
    p = P("big")
    blob = os.urandom(900 * 1024)
    zk.create(p, blob)
    data, st = zk2.get(p)
    eq(st.dataLength, len(blob), "dataLength")
    assert data == blob, "data differs (got %d bytes)" % len(data)
    zk.delete(p)


@check("session reattach by client_id keeps session; bad password refused")
def _():
    from kazoo.retry import KazooRetry
    p = P("reattach")
    # c1 must not reconnect once its connection is taken over (else c1 and c2 fight over
    # the session): no connection retries
    c1 = client(connection_retry=KazooRetry(max_tries=0))
    sid, pwd = c1.client_id
    c1.create(p, b"", ephemeral=True)
    # same session, resumed over a new connection (what a client does after a connection loss)
    c2 = client(client_id=(sid, pwd))
    eq(c2.client_id[0], sid, "resumed session id")
    eq(c2.exists(p).ephemeralOwner, sid, "ephemeral owner seen from resumed session")
    c2.create(p + "-2", b"", ephemeral=True)
    eq(zk.exists(p + "-2").ephemeralOwner, sid, "new ephemeral owned by the same session")
    assert wait_for(lambda: not c1.connected), "old connection not closed after session moved"
    # a wrong password is refused as an expired session; kazoo then starts a fresh session
    bad = client(client_id=(sid, b"\x00" * 16))
    assert bad.client_id[0] != sid, "wrong password accepted: got session %x back" % sid
    eq(zk.exists(p).ephemeralOwner, sid, "session survived the bad-password attempt")
    eq(c2.get(p)[0], b"", "resumed client still works")
    stop(bad)
    stop(c2)  # closes the session for good
    assert wait_for(lambda: zk.exists(p) is None and zk.exists(p + "-2") is None), \
        "ephemerals left after the resumed session closed"
    stop(c1)


@check("connection loss: same session resumes, ephemeral kept, DataWatch catches up")
def _():
    from kazoo.protocol.states import KazooState
    p = P("resume")
    proxy = Proxy(HOSTS)
    states = []
    c = KazooClient(hosts=proxy.addr, timeout=10.0,
                    connection_retry=dict(max_tries=-1, delay=0.05, backoff=1, max_delay=0.2))
    c.add_listener(states.append)
    c.start(timeout=10)
    try:
        sid = c.client_id[0]
        c.create(p, b"v1", ephemeral=True)
        seen = []
        c.DataWatch(p, func=lambda data, stat: seen.append(data))
        assert wait_for(lambda: seen == [b"v1"]), "DataWatch initial: %r" % seen
        proxy.cut()
        assert wait_for(lambda: KazooState.SUSPENDED in states), "client never noticed the cut"
        zk.set(p, b"v2")  # changed while the client is disconnected
        time.sleep(0.3)
        proxy.resume()
        assert wait_for(lambda: c.connected and states[-1] == KazooState.CONNECTED), \
            "client did not reconnect: states %r" % states
        eq(proxy.accepted, 2, "proxied connections (initial + reconnect)")
        eq(c.client_id[0], sid, "session id after reconnect")
        eq(KazooState.LOST in states, False, "session lost")
        eq(zk.exists(p).ephemeralOwner, sid, "ephemeral kept across reconnect")
        eq(c.get(p)[0], b"v2", "read after reconnect")
        assert wait_for(lambda: seen and seen[-1] == b"v2"), "DataWatch missed change: %r" % seen
        c.set(p, b"v3")
        assert wait_for(lambda: seen[-1] == b"v3"), "DataWatch after reconnect: %r" % seen
    finally:
        stop(c)
        proxy.close()
    assert wait_for(lambda: zk.exists(p) is None), "ephemeral left after client stopped"


@check("C client (cli_mt via proxy): watches re-set after reconnect")
def _():
    import subprocess
    cli_mt = "/usr/lib/zookeeper/bin/cli_mt"
    if not os.path.exists(cli_mt):
        raise AssertionError("%s not installed (Debian package zookeeper-bin)" % cli_mt)
    # The C client sends SetWatches(relativeZxid, ...) when it reconnects; the server must
    # fire at once the watches whose nodes changed while the client was away.
    p = P("setwatches")
    zk.create(p, b"a")
    zk.create(p + "/c", b"")
    proxy = Proxy(HOSTS)
    proc = subprocess.Popen([cli_mt, "-h", proxy.addr], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, bufsize=1)
    out = []
    threading.Thread(target=lambda: [out.append(l.rstrip()) for l in proc.stdout], daemon=True).start()

    def send(line):
        proc.stdin.write(line + "\n")
        proc.stdin.flush()

    def events():
        return [l.split("Watcher ", 1)[1] for l in out if l.startswith("Watcher ") and " for path " in l]

    try:
        assert wait_for(lambda: any("CONNECTED_STATE" in l for l in out)), "cli_mt never connected: %r" % out
        send("get %s" % p)            # data watch on p
        send("ls %s" % p)             # child watch on p
        send("wexists %s/new" % p)    # exists watch on a missing node
        send("get %s/c" % p)          # data watch on p/c
        # replies: "PATH: rc = 0" for get/ls, "Error -101 for PATH" for wexists of a missing node
        # (cli_mt prints a node's data with no newline, so a reply line may follow it on one line)
        assert wait_for(lambda: sum(1 for l in out if " rc = " in l or "Error -101 for" in l) >= 4
                        and any(l.startswith("/") and l.endswith("/c: rc = 0") for l in out)), \
            "cli_mt replies: %r" % out
        proxy.cut()
        assert wait_for(lambda: any("CONNECTING_STATE" in l for l in out)), "cli_mt did not notice the cut"
        zk.set(p, b"b")
        zk.create(p + "/new", b"")
        zk.delete(p + "/c")
        eq(events(), [], "events delivered while disconnected")
        proxy.resume()
        want = ["CHANGED_EVENT state = CONNECTED_STATE for path %s" % p,
                "CHILD_EVENT state = CONNECTED_STATE for path %s" % p,
                "CREATED_EVENT state = CONNECTED_STATE for path %s/new" % p,
                "DELETED_EVENT state = CONNECTED_STATE for path %s/c" % p]
        wait_for(lambda: len(events()) >= 4, timeout=8)
        time.sleep(0.2)
        eq(sorted(events()), sorted(want), "watch events after reconnect")
        eq(proxy.accepted, 2, "proxied connections (initial + reconnect)")
        zk.set(p, b"c")  # watches are one-shot: nothing more
        time.sleep(0.2)
        eq(len(events()), 4, "event count after a further change")
    finally:
        try:
            send("quit")
            proc.wait(3)
        except Exception:
            proc.kill()
        proxy.close()


@check("sync + 4lw ruok")
def _():
    zk.create(P("synced"), b"x")
    zk2.sync(P("synced"))
    eq(zk2.get(P("synced"))[0], b"x", "data after sync")
    eq(zk.command(b"ruok"), "imok", "ruok")


# ---------------------------------------------------------------- recipes
@check("Lock: second contender waits for release")
def _():
    c1, c2 = client(), client()
    path = P("lock")
    l1 = c1.Lock(path, "one")
    l2 = c2.Lock(path, "two")
    assert l1.acquire(timeout=WAIT), "first acquire failed"
    got = threading.Event()
    order = []

    def contend():
        if l2.acquire(timeout=10):
            order.append("two-acquired")
            got.set()

    th = threading.Thread(target=contend, daemon=True)
    th.start()
    assert wait_for(lambda: len(c1.get_children(path)) == 2), "second contender never queued"
    time.sleep(0.3)
    assert not got.is_set(), "second client acquired while first held the lock"
    eq(l1.contenders(), ["one", "two"], "contenders")
    l3 = c1.Lock(path, "three")
    eq(l3.acquire(blocking=False), False, "non-blocking acquire while held")
    order.append("one-released")
    l1.release()
    assert got.wait(WAIT), "second client never acquired after release"
    eq(order, ["one-released", "two-acquired"], "order")
    eq(l2.contenders(), ["two"], "contenders after hand-off")
    l2.release()
    th.join(1)
    eq(c1.get_children(path), [], "lock nodes left")
    stop(c1)
    stop(c2)


@check("Election: leader runs, other takes over when its client stops")
def _():
    c1, c2 = client(), client()
    path = P("election")
    e1 = c1.Election(path, "cand-1")
    e2 = c2.Election(path, "cand-2")
    led = []
    leading1, leading2, release = threading.Event(), threading.Event(), threading.Event()

    def lead(name, ev):
        led.append(name)
        ev.set()
        release.wait(15)

    def run(e, name, ev):
        try:
            e.run(lead, name, ev)
        except Exception:
            pass  # the first leader's client is stopped under it

    t1 = threading.Thread(target=run, args=(e1, "cand-1", leading1), daemon=True)
    t1.start()
    assert leading1.wait(WAIT), "first candidate never led"
    t2 = threading.Thread(target=run, args=(e2, "cand-2", leading2), daemon=True)
    t2.start()
    assert wait_for(lambda: len(e2.contenders()) == 2), "second candidate never registered"
    eq(e2.contenders(), ["cand-1", "cand-2"], "contenders")
    time.sleep(0.3)
    assert not leading2.is_set(), "second candidate led while first was leader"
    stop(c1)
    assert leading2.wait(WAIT), "second candidate did not take over after first client stopped"
    eq(led, ["cand-1", "cand-2"], "leaders in order")
    eq(e2.contenders(), ["cand-2"], "contenders after take-over")
    release.set()
    t2.join(WAIT)
    assert not t2.is_alive(), "second leader did not finish"
    eq(c2.get_children(path), [], "election nodes left")
    stop(c2)


@check("Barrier: waiter released when barrier removed")
def _():
    path = P("barrier")
    b1 = zk.Barrier(path)
    b2 = zk2.Barrier(path)
    eq(b2.wait(timeout=1), True, "wait with no barrier")
    b1.create()
    done, result = threading.Event(), []

    def waiter():
        result.append(b2.wait(timeout=10))
        done.set()

    threading.Thread(target=waiter, daemon=True).start()
    time.sleep(0.4)
    assert not done.is_set(), "waiter passed while barrier was up"
    eq(b2.wait(timeout=0.2), False, "timed wait while barrier up")
    b1.remove()
    assert done.wait(WAIT), "waiter not released after barrier removed"
    eq(result, [True], "wait result")


@check("Counter: concurrent increments from two clients")
def _():
    path = P("counter")
    c1, c2 = zk.Counter(path), zk2.Counter(path)
    eq(c1.value, 0, "initial value")

    def bump(c, n):
        for _ in range(n):
            c += 1

    ts = [threading.Thread(target=bump, args=(c, 25)) for c in (c1, c2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    eq(c2.value, 50, "value after 2x25 increments")
    c1 -= 8
    eq(c2.value, 42, "value after decrement")
    eq(zk.get(path)[0], b"42", "stored ascii")


@check("Counter: float and int defaults")
def _():
    f = zk.Counter(P("fcounter"), default=1.5)
    eq(f.value, 1.5, "float default")
    f += 2.0
    f2 = zk2.Counter(P("fcounter"), default=1.5)
    f2 += 0.25
    eq(f.value, 3.75, "float value")
    eq(type(f.value), float, "float type")
    i = zk.Counter(P("icounter"), default=10)
    i -= 3
    eq((zk2.Counter(P("icounter"), default=10).value, type(i.value)), (7, int), "int value")


@check("Queue: FIFO across clients, priorities")
def _():
    path = P("queue")
    q1, q2 = zk.Queue(path), zk2.Queue(path)
    for i, q in enumerate((q1, q2, q1, q2, q1)):
        q.put(b"item-%d" % i)
    eq(len(q2), 5, "len")
    got = [q.get() for q in (q2, q1, q2, q1, q2)]
    eq(got, [b"item-%d" % i for i in range(5)], "FIFO order")
    eq(q1.get(), None, "get on empty queue")
    q1.put(b"low", priority=200)
    q2.put(b"high", priority=5)
    q1.put(b"mid")
    eq([q2.get(), q1.get(), q2.get()], [b"high", b"mid", b"low"], "priority order")


@check("LockingQueue: get/consume, release hands item to other client")
def _():
    path = P("lqueue")
    q1, q2 = zk.LockingQueue(path), zk2.LockingQueue(path)
    q1.put(b"first")
    q1.put_all([b"second", b"third"])
    eq(len(q2), 3, "len")
    eq(q2.get(timeout=WAIT), b"first", "q2 takes first")
    eq(q2.holds_lock(), True, "q2 holds lock")
    eq(q1.get(timeout=WAIT), b"second", "q1 skips locked item")
    eq(q2.release(), True, "q2 release without consume")
    eq(q1.consume(), True, "q1 consumes second")
    eq(q2.get(timeout=WAIT), b"first", "released item available again")
    eq(q2.consume(), True, "q2 consumes first")
    eq(q1.get(timeout=WAIT), b"third", "q1 takes third")
    eq(q1.consume(), True, "q1 consumes third")
    eq(len(q2), 0, "len after consuming all")
    got = []
    th = threading.Thread(target=lambda: got.append(q2.get(timeout=10)), daemon=True)
    th.start()
    time.sleep(0.3)
    eq(got, [], "get on empty queue returned early")
    q1.put(b"late")
    th.join(WAIT)
    eq(got, [b"late"], "blocking get woken by put from other client")
    eq(q2.consume(), True, "consume late")


@check("DataWatch recipe: create/change/delete")
def _():
    path = P("dw")
    seen = []

    @zk.DataWatch(path)
    def watcher(data, stat, event):
        seen.append((data, stat.version if stat else None))

    assert wait_for(lambda: len(seen) >= 1), "no initial call"
    eq(seen[0], (None, None), "initial call for missing node")
    zk2.create(path, b"one")
    assert wait_for(lambda: (b"one", 0) in seen), "create not seen: %r" % seen
    zk2.set(path, b"two")
    assert wait_for(lambda: (b"two", 1) in seen), "change not seen: %r" % seen
    zk2.delete(path)
    assert wait_for(lambda: seen[-1] == (None, None) and len(seen) >= 4), "delete not seen: %r" % seen
    eq(seen, [(None, None), (b"one", 0), (b"two", 1), (None, None)], "sequence")


@check("ChildrenWatch recipe: add/remove children")
def _():
    path = P("chw")
    zk.create(path)
    seen = []

    @zk.ChildrenWatch(path)
    def watcher(children):
        seen.append(sorted(children))

    assert wait_for(lambda: len(seen) >= 1), "no initial call"
    eq(seen[0], [], "initial children")
    zk2.create(path + "/a")
    assert wait_for(lambda: seen[-1] == ["a"]), "add a not seen: %r" % seen
    zk2.create(path + "/b")
    assert wait_for(lambda: seen[-1] == ["a", "b"]), "add b not seen: %r" % seen
    zk2.delete(path + "/a")
    assert wait_for(lambda: seen[-1] == ["b"]), "delete a not seen: %r" % seen


@check("Semaphore: max_leases=2, third waits")
def _():
    path = P("sem")
    c3 = client()
    s1 = zk.Semaphore(path, "s1", max_leases=2)
    s2 = zk2.Semaphore(path, "s2", max_leases=2)
    s3 = c3.Semaphore(path, "s3", max_leases=2)
    assert s1.acquire(timeout=WAIT) and s2.acquire(timeout=WAIT), "first two leases"
    got = threading.Event()
    threading.Thread(target=lambda: s3.acquire(timeout=10) and got.set(), daemon=True).start()
    time.sleep(0.4)
    assert not got.is_set(), "third lease granted while two held"
    eq(sorted(s1.lease_holders()), ["s1", "s2"], "lease holders")
    s1.release()
    assert got.wait(WAIT), "third never got a lease after a release"
    eq(sorted(s2.lease_holders()), ["s2", "s3"], "lease holders after hand-off")
    s2.release()
    s3.release()
    stop(c3)


@check("ReadLock/WriteLock: readers share, writer excludes")
def _():
    path = P("rwlock")
    r1, r2 = zk.ReadLock(path, "r1"), zk2.ReadLock(path, "r2")
    w = zk2.WriteLock(path, "w")
    assert r1.acquire(timeout=WAIT) and r2.acquire(timeout=WAIT), "two readers"
    got = threading.Event()
    threading.Thread(target=lambda: w.acquire(timeout=10) and got.set(), daemon=True).start()
    time.sleep(0.3)
    assert not got.is_set(), "writer got the lock while readers held it"
    r1.release()
    time.sleep(0.2)
    assert not got.is_set(), "writer got the lock while one reader held it"
    r2.release()
    assert got.wait(WAIT), "writer never acquired"
    r3 = zk.ReadLock(path, "r3")
    eq(r3.acquire(blocking=False), False, "reader while writer holds")
    w.release()
    assert r3.acquire(timeout=WAIT), "reader after writer released"
    r3.release()


@check("DoubleBarrier: enter/leave with two clients")
def _():
    path = P("dbarrier")
    b1 = zk.DoubleBarrier(path, 2, "one")
    b2 = zk2.DoubleBarrier(path, 2, "two")
    entered = threading.Event()

    def first():
        b1.enter()
        entered.set()
        b1.leave()

    th = threading.Thread(target=first, daemon=True)
    th.start()
    time.sleep(0.3)
    assert not entered.is_set(), "entered with one of two participants"
    b2.enter()
    assert entered.wait(WAIT), "first participant not released when second entered"
    b2.leave()
    th.join(WAIT)
    assert not th.is_alive(), "first participant stuck in leave"
    eq(zk.get_children(path), [], "barrier nodes left")


@check("Party: members joining and leaving")
def _():
    path = P("party")
    p1, p2 = zk.Party(path, "m1"), zk2.Party(path, "m2")
    p1.join()
    p2.join()
    eq(sorted(p1), ["m1", "m2"], "members")
    eq(len(p2), 2, "len")
    p1.leave()
    eq(list(p2), ["m2"], "members after leave")
    p2.leave()


@check("TreeCache: initial load and live updates")
def _():
    from kazoo.recipe.cache import TreeCache, TreeEvent
    path = P("tcache")
    zk2.create(path + "/a", b"A", makepath=True)
    cache = TreeCache(zk, path)
    events = []
    cache.listen(lambda e: events.append(e.event_type))
    cache.start()
    try:
        assert wait_for(lambda: TreeEvent.INITIALIZED in events), "never initialized"
        eq(cache.get_data(path + "/a").data, b"A", "cached data")
        zk2.create(path + "/b", b"B")
        assert wait_for(lambda: cache.get_data(path + "/b") is not None), "add not cached"
        zk2.set(path + "/a", b"A2")
        assert wait_for(lambda: cache.get_data(path + "/a").data == b"A2"), "update not cached"
        zk2.delete(path + "/b")
        assert wait_for(lambda: cache.get_data(path + "/b") is None), "delete not cached"
        eq(sorted(cache.get_children(path)), ["a"], "cached children")
    finally:
        cache.close()


# ---------------------------------------------------------------- cleanup
@check("cleanup: recursive delete of root")
def _():
    zk.add_auth("digest", "alice:secret")  # in case the ACL check left its node protected
    zk.delete(ROOT, recursive=True)
    eq(zk2.exists(ROOT), None, "root after delete")


for c in CLIENTS:
    stop(c)

failed = [n for n, ok in RESULTS if not ok]
print("# %d passed, %d failed%s" % (len(RESULTS) - len(failed), len(failed),
                                     (": " + "; ".join(failed)) if failed else ""), flush=True)
sys.exit(1 if failed else 0)
