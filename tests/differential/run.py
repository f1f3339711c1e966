#!/usr/bin/env python3
"""Differential harness: keeper against Apache ZooKeeper 3.8 (the Debian package).

    python3 tests/differential/run.py --keeper target/debug/keeper [--scenario NAME]... [--verbose]
        [--list] [--dump DIR] [--keep]

--list prints the scenario names, --dump writes each side's normalised lines to
DIR/<scenario>.<server>.txt, --keep keeps the temp dir with both servers' logs.
Exit status 0 only if every scenario passes.

Starts a real ZooKeeper 3.8 standalone server and keeper, each on its own free
127.0.0.1 port with an equivalent zoo.cfg, runs every scenario against both (each
scenario on fresh connections, under its own root path), turns every reply and
notification into a normalised text line and diffs the two lists.

Normalisation (nothing else is normalised away):
  * zxids: a positive zxid is printed relative to the first positive zxid seen in
    the scenario (``Z+0``, ``Z+3``, ``Z-7``); 0 and negative zxids are printed as is;
  * times (ctime, mtime): 0 is printed as 0, a plausible wall-clock time as ``T``;
  * session ids: mapped to S1, S2... by first appearance (0 stays 0);
  * passwords: only their length and whether they are all zero are kept;
  * child lists (getChildren, getChildren2, multi/multiRead results) are sorted;
    so are the other lists the real server builds in Java hash-set order:
    getEphemerals paths, whoAmI entries, and (only where a scenario asks for it with
    get_acl_sorted) an ACL produced by expanding the `auth` scheme, whose entries follow
    the connection's auth-info set.

Four-letter words are compared on stable facts only (line keys, modes, fixed
answers, how counters move), never on counters that depend on timing.

Scenarios whose difference is intentional (keeper follows ZooKeeper 3.9 there) are
listed in EXPECTED_DIFFERENCES: for them each side must produce its own documented
lines exactly.

Python 3 standard library only.
"""

import argparse
import base64
import difflib
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # digest of super:test
ZK_CLASSPATH = ":".join([
    "/etc/zookeeper/conf",
    "/usr/share/java/zookeeper.jar",  # its manifest Class-Path names the other jars
    "/usr/share/java/servlet-api.jar",  # the AdminServer's Jetty needs it; the manifest omits it
    "/usr/share/java/slf4j-log4j12.jar",  # only so that the server log is written
    "/usr/share/java/log4j-1.2.jar",
])
REPLY_TIMEOUT = 5.0   # seconds to wait for a reply that must come
CLOSE_TIMEOUT = 2.0   # seconds to wait for the server to close a connection
SILENCE_TIMEOUT = 1.0  # seconds of silence that count as "no reply"

OPEN_ACL = [(31, "world", "anyone")]
READ_ACL = [(1, "world", "anyone")]

OPS = {
    "create": 1, "delete": 2, "exists": 3, "getData": 4, "setData": 5, "getACL": 6,
    "setACL": 7, "getChildren": 8, "sync": 9, "ping": 11, "getChildren2": 12,
    "check": 13, "multi": 14, "create2": 15, "reconfig": 16, "checkWatches": 17,
    "removeWatches": 18, "createContainer": 19, "deleteContainer": 20, "createTTL": 21,
    "multiRead": 22, "auth": 100, "setWatches": 101, "sasl": 102, "getEphemerals": 103,
    "getAllChildrenNumber": 104, "setWatches2": 105, "addWatch": 106, "whoAmI": 107,
    "closeSession": -11,
}
EVENT_TYPES = {1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged",
               4: "NodeChildrenChanged"}


def digest_id(user_password):
    user = user_password.split(":", 1)[0]
    h = base64.b64encode(hashlib.sha1(user_password.encode()).digest()).decode()
    return "%s:%s" % (user, h)


# --------------------------------------------------------------------------------------
# Jute encoding / decoding

def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def buf(b):
    return i32(-1) if b is None else i32(len(b)) + b


def ustr(s):
    if s is None:
        return i32(-1)
    if isinstance(s, str):
        s = s.encode("utf-8", "surrogatepass")
    return i32(len(s)) + s


def vec(items, enc):
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(enc(x) for x in items)


def acl_vec(acls):
    return vec(acls, lambda a: i32(a[0]) + ustr(a[1]) + ustr(a[2]))


class Short(Exception):
    pass


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, n):
        if self.p + n > len(self.d):
            raise Short("need %d bytes at %d of %d" % (n, self.p, len(self.d)))
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def boolean(self):
        return self.take(1)[0]

    def buf(self):
        n = self.i32()
        return None if n == -1 else self.take(n)

    def ustr(self):
        b = self.buf()
        return None if b is None else b.decode("utf-8", "backslashreplace")

    def vec(self, dec):
        n = self.i32()
        if n == -1:
            return None
        return [dec(self) for _ in range(n)]

    def rest(self):
        return self.d[self.p:]


# --------------------------------------------------------------------------------------
# Normalisation

class Norm:
    def __init__(self):
        self.base = None
        self.sessions = {}

    def z(self, v):
        if v <= 0:
            return str(v)
        if self.base is None:
            self.base = v
        return "Z%+d" % (v - self.base)

    def s(self, v):
        if v == 0:
            return "0"
        if v not in self.sessions:
            self.sessions[v] = "S%d" % (len(self.sessions) + 1)
        return self.sessions[v]

    @staticmethod
    def t(v):
        if v == 0:
            return "0"
        if abs(v - time.time() * 1000) < 600000:
            return "T"
        return "T?%d" % v


def fmt_data(b):
    if b is None:
        return "None"
    if len(b) > 48:
        return "<%d bytes sha1:%s>" % (len(b), hashlib.sha1(b).hexdigest()[:12])
    return repr(b)


def dec_stat(r, n):
    f = struct.unpack(">qqqqiiiqiiq", r.take(68))
    return ("{cz=%s mz=%s ct=%s mt=%s v=%d cv=%d av=%d eo=%s dl=%d nc=%d pz=%s}" % (
        n.z(f[0]), n.z(f[1]), n.t(f[2]), n.t(f[3]), f[4], f[5], f[6], n.s(f[7]),
        f[8], f[9], n.z(f[10])))


def sorted_or_none(v):
    return None if v is None else sorted(v)


GETACL_SORTED = 1006  # pseudo opcode: a getACL reply decoded with its ACL list sorted


def dec_acls(r, sort=False):
    acls = r.vec(lambda x: (x.i32(), x.ustr(), x.ustr()))
    if acls is None:
        return "None"
    if sort:
        acls = sorted(acls, key=lambda a: (a[0], a[1] or "", a[2] or ""))
    return "[" + ", ".join("%d:%s:%s" % a for a in acls) + "]"


def dec_children(r):
    ch = r.vec(lambda x: x.ustr())
    return "None" if ch is None else repr(sorted(ch))


def body_decoder(op):
    """Decoder of a successful reply body: (Reader, Norm) -> text."""
    def none(r, n):
        return ""

    table = {
        1: lambda r, n: "path=%r" % r.ustr(),
        15: lambda r, n: "path=%r stat=%s" % (r.ustr(), dec_stat(r, n)),
        19: lambda r, n: "path=%r stat=%s" % (r.ustr(), dec_stat(r, n)),
        21: lambda r, n: "path=%r stat=%s" % (r.ustr(), dec_stat(r, n)),
        3: lambda r, n: "stat=%s" % dec_stat(r, n),
        4: lambda r, n: "data=%s stat=%s" % (fmt_data(r.buf()), dec_stat(r, n)),
        16: lambda r, n: "data=%s stat=%s" % (fmt_data(r.buf()), dec_stat(r, n)),
        5: lambda r, n: "stat=%s" % dec_stat(r, n),
        7: lambda r, n: "stat=%s" % dec_stat(r, n),
        6: lambda r, n: "acl=%s stat=%s" % (dec_acls(r), dec_stat(r, n)),
        8: lambda r, n: "children=%s" % dec_children(r),
        12: lambda r, n: "children=%s stat=%s" % (dec_children(r), dec_stat(r, n)),
        9: lambda r, n: "path=%r" % r.ustr(),
        14: dec_multi,
        22: dec_multi,
        102: lambda r, n: "token=%s" % fmt_data(r.buf()),
        103: lambda r, n: "ephemerals=%s" % dec_children(r),
        104: lambda r, n: "total=%d" % r.i32(),
        106: lambda r, n: "errbody=%d" % r.i32(),
        # Java hash-set order on the real server: sorted, like child lists
        107: lambda r, n: "clientInfo(sorted)=%s" % (
            sorted_or_none(r.vec(lambda x: (x.ustr(), x.ustr()))),),
        # getACL of a node whose ACL came from the `auth` scheme: the expansion follows the
        # connection's auth-info set, a Java hash-set order on the real server; sorted.
        GETACL_SORTED: lambda r, n: "acl(sorted)=%s stat=%s" % (dec_acls(r, True), dec_stat(r, n)),
    }
    return table.get(op, none)


MULTI_RESULT = {
    1: lambda r, n: " path=%r" % r.ustr(),
    15: lambda r, n: " path=%r stat=%s" % (r.ustr(), dec_stat(r, n)),
    2: lambda r, n: "",
    13: lambda r, n: "",
    5: lambda r, n: " stat=%s" % dec_stat(r, n),
    8: lambda r, n: " children=%s" % dec_children(r),
    4: lambda r, n: " data=%s stat=%s" % (fmt_data(r.buf()), dec_stat(r, n)),
    -1: lambda r, n: " errbody=%d" % r.i32(),
}


def dec_multi(r, n):
    parts = []
    while True:
        typ, done, err = r.i32(), r.boolean(), r.i32()
        if done:
            parts.append("end(%d,%d,%d)" % (typ, done, err))
            break
        if typ not in MULTI_RESULT:
            parts.append("(%d,%d,%d ?)" % (typ, done, err))
            break
        parts.append("(%d,%d,%d%s)" % (typ, done, err, MULTI_RESULT[typ](r, n)))
    return "results=[" + " ".join(parts) + "]"


# --------------------------------------------------------------------------------------
# Request bodies

def b_create(path, data=b"", acl=OPEN_ACL, flags=0):
    return ustr(path) + buf(data) + acl_vec(acl) + i32(flags)


def b_create_ttl(path, data=b"", acl=OPEN_ACL, flags=5, ttl=10000):
    return b_create(path, data, acl, flags) + i64(ttl)


def b_path_watch(path, watch=False):
    return ustr(path) + boolean(watch)


def b_path_int(path, v):
    return ustr(path) + i32(v)


def b_set_data(path, data, version=-1):
    return ustr(path) + buf(data) + i32(version)


def b_set_acl(path, acl, version=-1):
    return ustr(path) + acl_vec(acl) + i32(version)


def multi_body(ops):
    """ops: list of (type, body bytes)."""
    out = b""
    for typ, body in ops:
        out += i32(typ) + boolean(False) + i32(-1) + body
    return out + i32(-1) + boolean(True) + i32(-1)


def b_set_watches(rel, data=(), exist=(), child=(), persistent=None, recursive=None):
    body = i64(rel) + vec(list(data), ustr) + vec(list(exist), ustr) + vec(list(child), ustr)
    if persistent is not None:
        body += vec(list(persistent), ustr) + vec(list(recursive or ()), ustr)
    return body


# --------------------------------------------------------------------------------------
# Connections

EOF = "EOF"
TIMEOUT = "TIMEOUT"


class Conn:
    def __init__(self, ctx, name):
        self.ctx, self.name = ctx, name
        self.sock = socket.create_connection(("127.0.0.1", ctx.port), timeout=REPLY_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rbuf = b""
        self.xid = 0
        self.sid = 0
        self.passwd = b""
        self.open = True
        self.session_ok = False
        self.last_zxid = 0
        ctx.conns.append(self)

    # -- raw I/O
    def send_raw(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.log("send failed: %s" % e.__class__.__name__)

    def send_frame(self, payload):
        self.send_raw(i32(len(payload)) + payload)

    def _fill(self, n, deadline):
        while len(self.rbuf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                raise TimeoutError()
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                raise EOFError()
            self.rbuf += data

    def read_frame(self, timeout):
        if not self.open:
            return EOF
        deadline = time.monotonic() + timeout
        try:
            self._fill(4, deadline)
            n = struct.unpack(">i", self.rbuf[:4])[0]
            self._fill(4 + n, deadline)
        except TimeoutError:
            return TIMEOUT
        except EOFError:
            self.open = False
            if self.rbuf:
                self.log("partial frame before close: %s" % self.rbuf.hex())
                self.rbuf = b""
            return EOF
        frame, self.rbuf = self.rbuf[4:4 + n], self.rbuf[4 + n:]
        return frame

    def log(self, text):
        self.ctx.log("%s %s" % (self.name, text))

    # -- handshake
    def connect(self, timeout=30000, sid=0, passwd=b"\0" * 16, last_zxid=0, readonly=False,
                send_readonly=True, label="connect"):
        body = i32(0) + i64(last_zxid) + i32(timeout) + i64(sid) + buf(passwd)
        if send_readonly:
            body += boolean(readonly)
        self.send_frame(body)
        return self.read_connect_response(label)

    def read_connect_response(self, label="connect"):
        f = self.read_frame(REPLY_TIMEOUT)
        if f in (EOF, TIMEOUT):
            self.log("%s -> %s (no connect response)" % (label, "CLOSED" if f == EOF else "NO REPLY"))
            return None
        r = Reader(f)
        try:
            proto, to, rsid, pw = r.i32(), r.i32(), r.i64(), r.buf()
            ro = r.rest()
            pwtxt = "None" if pw is None else "%dB%s" % (len(pw), "-zero" if not any(pw) else "")
            self.log("%s -> len=%d proto=%d timeout=%d sid=%s passwd=%s readOnly=%s" % (
                label, len(f), proto, to, self.ctx.norm.s(rsid), pwtxt, ro.hex() or "absent"))
        except Short:
            self.log("%s -> undecodable %s" % (label, f.hex()))
            return None
        if rsid:
            self.sid, self.passwd, self.session_ok = rsid, pw, True
        return rsid

    # -- requests
    def next_xid(self):
        self.xid += 1
        return self.xid

    def call(self, label, op, body=b"", xid=None, timeout=REPLY_TIMEOUT, decode_op=None):
        if xid is None:
            xid = self.next_xid()
        self.send_frame(i32(xid) + i32(op) + body)
        return self.read_reply(label, op if decode_op is None else decode_op, timeout)

    def read_reply(self, label, op, timeout=REPLY_TIMEOUT):
        """Reads frames, logging notifications, until a reply; returns (xid, zxid, err) or None."""
        while True:
            f = self.read_frame(timeout)
            if f == EOF:
                self.log("%s -> CLOSED" % label)
                return None
            if f == TIMEOUT:
                self.log("%s -> NO REPLY" % label)
                return None
            if len(f) < 16:
                self.log("%s -> short frame %s" % (label, f.hex()))
                return None
            xid, zxid, err = struct.unpack(">iqi", f[:16])
            if xid == -1:
                self.log_event(f)
                continue
            if zxid > 0:
                self.last_zxid = max(self.last_zxid, zxid)
            r = Reader(f[16:])
            text = ""
            if err == 0 or (op in (14, 22) and len(f) > 16):
                try:
                    text = body_decoder(op)(r, self.ctx.norm)
                except Short:
                    text = "UNDECODABLE body=%s" % f[16:].hex()
                    r = Reader(b"")
            rest = r.rest()
            if rest:
                text += " extra=%s" % rest.hex()
            self.log("%s -> xid=%d zxid=%s err=%d%s" % (
                label, xid, self.ctx.norm.z(zxid), err, (" " + text.strip()) if text.strip() else ""))
            return (xid, zxid, err)

    def log_event(self, f):
        xid, zxid, err = struct.unpack(">iqi", f[:16])
        r = Reader(f[16:])
        try:
            typ, state, path = r.i32(), r.i32(), r.ustr()
            rest = r.rest()
            self.log("EVENT xid=%d zxid=%s err=%d %s state=%d path=%r%s" % (
                xid, self.ctx.norm.z(zxid), err, EVENT_TYPES.get(typ, typ), state, path,
                (" extra=" + rest.hex()) if rest else ""))
        except Short:
            self.log("EVENT undecodable %s" % f.hex())

    def expect_closed(self, timeout=CLOSE_TIMEOUT, label="after"):
        """Logs every frame until the server closes the connection or stays silent."""
        while True:
            f = self.read_frame(timeout)
            if f == EOF:
                self.log("%s: closed by server" % label)
                return True
            if f == TIMEOUT:
                self.log("%s: still open (silent %.1fs)" % (label, timeout))
                return False
            if len(f) >= 16 and struct.unpack(">i", f[:4])[0] == -1:
                self.log_event(f)
            else:
                self.log("%s: unexpected frame %s" % (label, f.hex()))

    def pipeline(self, reqs):
        """Sends every (label, op, body) in one write, then reads the replies in order."""
        out = b""
        for label, op, body in reqs:
            out += i32(8 + len(body)) + i32(self.next_xid()) + i32(op) + body
        self.send_raw(out)
        for label, op, body in reqs:
            self.read_reply(label, op)

    def drain(self):
        """A ping: every event caused by earlier requests must arrive before its reply."""
        return self.call("ping", 11, xid=-2)

    # -- convenience wrappers
    def create(self, path, data=b"", acl=OPEN_ACL, flags=0, op=1, label=None):
        return self.call(label or "%s(%r,f=%d)" % (_opname(op), path, flags), op,
                         b_create(path, data, acl, flags))

    def create2(self, path, data=b"", acl=OPEN_ACL, flags=0, label=None):
        return self.create(path, data, acl, flags, op=15, label=label)

    def create_ttl(self, path, ttl, flags=5, data=b"", acl=OPEN_ACL):
        return self.call("createTTL(%r,f=%d,ttl=%d)" % (path, flags, ttl), 21,
                         b_create_ttl(path, data, acl, flags, ttl))

    def delete(self, path, version=-1):
        return self.call("delete(%r,v=%d)" % (path, version), 2, b_path_int(path, version))

    def exists(self, path, watch=False):
        return self.call("exists(%r%s)" % (path, ",w" if watch else ""), 3, b_path_watch(path, watch))

    def get_data(self, path, watch=False):
        return self.call("getData(%r%s)" % (path, ",w" if watch else ""), 4, b_path_watch(path, watch))

    def set_data(self, path, data, version=-1):
        return self.call("setData(%r,%s,v=%d)" % (path, fmt_data(data), version), 5,
                         b_set_data(path, data, version))

    def get_children(self, path, watch=False):
        return self.call("getChildren(%r%s)" % (path, ",w" if watch else ""), 8, b_path_watch(path, watch))

    def get_children2(self, path, watch=False):
        return self.call("getChildren2(%r%s)" % (path, ",w" if watch else ""), 12, b_path_watch(path, watch))

    def get_acl(self, path):
        return self.call("getACL(%r)" % path, 6, ustr(path))

    def get_acl_sorted(self, path):
        return self.call("getACL(%r)" % path, 6, ustr(path), decode_op=GETACL_SORTED)

    def set_acl(self, path, acl, version=-1):
        return self.call("setACL(%r,%s,v=%d)" % (path, acl, version), 7, b_set_acl(path, acl, version))

    def add_auth(self, scheme, auth, xid=-4):
        return self.call("addAuth(%s,%r)" % (scheme, auth), 100,
                         i32(0) + ustr(scheme) + buf(auth.encode() if isinstance(auth, str) else auth),
                         xid=xid)

    def multi(self, label, ops, op=14):
        return self.call(label, op, multi_body(ops))

    def add_watch(self, path, mode):
        return self.call("addWatch(%r,mode=%d)" % (path, mode), 106, b_path_int(path, mode))

    def check_watches(self, path, typ):
        return self.call("checkWatches(%r,type=%d)" % (path, typ), 17, b_path_int(path, typ))

    def remove_watches(self, path, typ):
        return self.call("removeWatches(%r,type=%d)" % (path, typ), 18, b_path_int(path, typ))

    def close_session(self):
        r = self.call("closeSession", -11)
        if r is not None:
            self.expect_closed(label="after closeSession")
        return r


def _opname(op):
    for k, v in OPS.items():
        if v == op:
            return k
    return str(op)


# --------------------------------------------------------------------------------------
# Scenario context

class Ctx:
    def __init__(self, server, scenario):
        self.server = server
        self.kind = server.kind
        self.port = server.port
        self.root = "/diff-" + scenario
        self.norm = Norm()
        self.lines = []
        self.conns = []

    def log(self, line):
        self.lines.append(line)

    def note(self, text):
        self.lines.append("## " + text)

    def conn(self, name, **kw):
        c = Conn(self, name)
        c.connect(**kw)
        return c

    def raw_conn(self, name):
        return Conn(self, name)

    def close_all(self):
        for c in self.conns:
            if c.open and c.session_ok:
                try:
                    c.send_frame(i32(c.next_xid()) + i32(-11))
                    c.read_frame(2.0)
                except OSError:
                    pass
            try:
                c.sock.close()
            except OSError:
                pass

    def admin(self, path, timeout=5.0):
        """GET /commands/<path> from the server's AdminServer: (status, JSON body or text)."""
        c = http.client.HTTPConnection("127.0.0.1", self.server.admin_port, timeout=timeout)
        try:
            c.request("GET", "/commands/" + path if path else "/commands")
            resp = c.getresponse()
            text = resp.read().decode(errors="replace")
            if resp.getheader("Content-Type", "").startswith("application/json"):
                return resp.status, json.loads(text)
            return resp.status, text
        finally:
            c.close()

    def four(self, word, extra=b"", timeout=3.0):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall((word if isinstance(word, bytes) else word.encode()) + extra)
            out = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    d = s.recv(65536)
                except socket.timeout:
                    return out.decode(errors="replace"), False
                except ConnectionResetError:
                    break
                if not d:
                    break
                out += d
            return out.decode(errors="replace"), True
        finally:
            s.close()


# --------------------------------------------------------------------------------------
# Scenarios

SCENARIOS = []


def scenario(fn):
    SCENARIOS.append(fn)
    return fn


def setup(ctx, name="A", **kw):
    """First connection plus the scenario root (its reply zxid is the zxid base)."""
    a = ctx.conn(name, **kw)
    a.create(ctx.root)
    return a


@scenario
def handshake(ctx):
    r = ctx.root
    a = ctx.conn("A", timeout=1000)                       # below min -> 4000
    a.create(r)
    ctx.conn("B", timeout=10 ** 7, send_readonly=False)  # above max -> 40000, 36-byte reply
    ctx.conn("C", timeout=-5)                             # negative -> min
    ctx.conn("D", timeout=20000, readonly=True)           # readOnly requested, answered false
    # Re-attach A's session from another socket with a wrong password.
    e = ctx.raw_conn("E")
    e.connect(sid=a.sid, passwd=b"x" * 16, timeout=20000, label="reattach wrong passwd")
    e.expect_closed()
    a.expect_closed(label="old connection after reattach attempt")
    # ... the session survived: re-attach with the right password.
    f = ctx.raw_conn("F")
    f.connect(sid=a.sid, passwd=a.passwd, timeout=6000, label="reattach right passwd")
    f.exists(r)
    # A short password (old client style, 36-byte reply requested).
    g = ctx.raw_conn("G")
    g.connect(sid=a.sid, passwd=b"ab", send_readonly=False, label="reattach short passwd")
    g.expect_closed()
    f.expect_closed(label="after G's attempt")
    h = ctx.raw_conn("H")
    h.connect(sid=a.sid, passwd=a.passwd, label="reattach again")
    # Unknown session id.
    u = ctx.raw_conn("U")
    u.connect(sid=0x0123456789ab0000, passwd=b"\0" * 16, label="reattach unknown session")
    u.expect_closed()
    # lastZxidSeen ahead of the server: closed without any response.
    ahead = ctx.raw_conn("Z")
    ahead.connect(last_zxid=max(a.last_zxid, f.last_zxid) + 1000,
                  label="lastZxidSeen ahead")
    ahead.expect_closed()
    # lastZxidSeen equal to the server's: accepted.
    i = ctx.raw_conn("I")
    i.connect(last_zxid=a.last_zxid, label="lastZxidSeen current")
    i.call("ping(xid=77)", 11, xid=77)
    i.call("ping(xid=-2)", 11, xid=-2)
    i.call("exists(xid=0)", 3, b_path_watch(r), xid=0)
    i.call("exists(xid=-5)", 3, b_path_watch(r), xid=-5)
    sid_i, pw_i = i.sid, i.passwd
    i.close_session()
    j = ctx.raw_conn("J")
    j.connect(sid=sid_i, passwd=pw_i, label="reattach closed session")
    j.expect_closed()
    h.exists(r)


@scenario
def create_modes(ctx):
    r = ctx.root
    a = setup(ctx)
    a.create(r + "/p", b"x")
    a.create2(r + "/p2", None)
    a.get_data(r + "/p2")
    a.create2(r + "/p3", b"")
    a.get_data(r + "/p3")
    a.create2(r + "/e", b"eph", flags=1)
    a.create2(r + "/es-", flags=3)
    a.create2(r + "/ps-", flags=2)
    a.create(r + "/ps-", flags=2)
    a.create(r + "/c", op=19, flags=4)
    a.create(r + "/c2", op=19, flags=0)
    a.create(r + "/cs-", op=19, flags=2)
    a.create2(r + "/c3", flags=4)                  # create2 with the container flag
    a.create(r + "/c4", flags=4)                   # create with the container flag
    a.create_ttl(r + "/t", 1000)
    a.create_ttl(r + "/ts-", 5000, flags=6)
    a.create_ttl(r + "/t0", 0)
    a.create_ttl(r + "/t1", 1)
    a.create_ttl(r + "/tmax", (1 << 40) - 1)
    a.create_ttl(r + "/tbig", 1 << 40)
    a.create_ttl(r + "/tneg", -1)
    a.create_ttl(r + "/tflag0", 100, flags=0)
    a.create_ttl(r + "/tflag1", 100, flags=1)
    a.create_ttl(r + "/tflag4", 100, flags=4)
    a.create_ttl(r + "/tflag7", 100, flags=7)
    a.create(r + "/f5", flags=5)                   # TTL flag without a ttl
    a.create2(r + "/f6", flags=6)
    a.create(r + "/f7", flags=7)
    a.create(r + "/fneg", flags=-1)
    a.create(r + "/f256", flags=256)
    a.create(r + "/p", b"again")                   # NodeExists, still uses a zxid
    a.create(r + "/after-exists")
    a.create2(r + "/c/child", flags=1)             # ephemeral under a container
    a.create2(r + "/t/child")                      # child of a TTL node
    a.create2(r + "/e/child")                      # NoChildrenForEphemerals
    a.create2(r + "/e/s-", flags=2)
    a.create(r + "/e/c", op=19, flags=4)
    a.create_ttl(r + "/e/t", 100)
    a.create2(r + "/e")                            # exists: NodeExists beats -108
    a.get_children2(r)
    for n in ("/c", "/c2", "/t", "/tmax", "/e", "/c3", "/c4"):
        a.exists(r + n)
    a.create(r + "/big", b"z" * 5000)
    a.get_data(r + "/big")
    a.create(r + "/utf", "h\u00e9\u65e5".encode())
    a.get_data(r + "/utf")


@scenario
def create_paths(ctx):
    r = ctx.root
    a = setup(ctx)
    a.create(r + "/ex")
    cases = [
        r + "/a//b", r + "//a", r + "/missing/", r + "/ex/", "/", "noslash", "", r + "/",
        r + "/bad\x01", r + "/bad\x1f", r + "/bad\x7f", r + "/bad\u0080", r + "/bad\u009f",
        r + "/bad\ud83d\ude00".encode("utf-16", "surrogatepass").decode("utf-16"),
        r + "/bad\ue000", r + "/bad\uf8ff", r + "/bad\ufff0", r + "/bad\ufffd", r + "/bad\uffff",
        r + "/ok\u00a0", r + "/ok\u07ff\u0800\ud7ff\uf900\uffef",
        r + "/nul\x00x", r + "/.", r + "/..", r + "/...", r + "/.a", r + "/a.", r + "/ex/./b",
        r + "/ex/..", r + "/ex/../x", r + "/ex/.", r + "/e\u00e9", r + "/\u65e5\u672c",
        r + "/" + "n" * 1000,
    ]
    for p in cases:
        a.create(p)
    a.create(r + "/ex/", flags=2)                  # sequential "/p/" is legal
    a.create(r + "/ex/", flags=2)
    a.create(r + "/ex/s", flags=2)
    a.create(r + "/ex/.", flags=2)
    a.create(r + "/missing/", flags=2)
    a.create("/", flags=2)
    a.create(r + "/missing/x", acl=[])             # InvalidACL beats NoNode
    a.create(r + "/missing/x", acl=None)
    a.create(r + "/bad\x01", acl=[])
    a.get_children2(r + "/ex")
    # reads do not validate paths, setData does, exists rejects NUL
    for p in ("", "noslash", r + "/ex/", r + "//ex", r + "/nul\x00", r + "/bad\x01"):
        a.exists(p)
        a.get_data(p)
        a.get_children(p)
    a.get_children2("")
    for p in ("", "noslash", r + "/ex/", r + "/nul\x00", r + "/missing", r + "//ex"):
        a.set_data(p, b"v")
    for p in (r + "/ex/", "noslash", r + "/missing", r + "/nul\x00"):
        a.set_acl(p, OPEN_ACL)
        a.get_acl(p)


@scenario
def path_encoding(ctx):
    """Paths that are not valid UTF-8, and null paths."""
    r = ctx.root
    a = setup(ctx)
    a.create((r + "/bad\xff").encode("latin-1"), label="create(invalid utf-8 0xff)")
    a.create((r + "/bad").encode() + b"\xed\xa0\x80", label="create(CESU-8 surrogate)")
    a.create((r + "/bad").encode() + b"\xc0\xaf", label="create(overlong '/')")
    a.create((r + "/bad").encode() + b"\xf0\x9f\x98\x80", label="create(4-byte utf-8)")
    a.exists(r)
    a.exists((r + "/bad\xff").encode("latin-1"))
    a.create(None, label="create(null path)")
    a.exists(r)
    a.call("exists(null)", 3, ustr(None) + boolean(False))
    a.call("getData(null)", 4, ustr(None) + boolean(False))
    a.call("getChildren(null)", 8, ustr(None) + boolean(False))
    a.call("setData(null)", 5, ustr(None) + buf(b"x") + i32(-1))
    a.call("delete(null)", 2, ustr(None) + i32(-1))
    a.call("sync(null)", 9, ustr(None))
    a.call("getEphemerals(null)", 103, ustr(None))
    a.exists(r)


@scenario
def system_nodes(ctx):
    r = ctx.root
    a = setup(ctx)
    for p in ("/zookeeper", "/zookeeper/quota", "/zookeeper/config"):
        a.exists(p)
        a.get_data(p)
        a.get_children2(p)
        a.get_acl(p)
    a.call("getAllChildrenNumber('/zookeeper')", 104, ustr("/zookeeper"))
    a.set_data("/zookeeper/config", b"x")
    a.set_data("/zookeeper/config", b"x", version=5)
    a.set_acl("/zookeeper/config", OPEN_ACL)
    a.create("/zookeeper/config/x")
    a.create("/zookeeper/quota" + r)
    a.get_children2("/zookeeper/quota")
    a.delete("/zookeeper/quota" + r)
    a.get_children2("/zookeeper/quota")
    a.create("/zookeeper/dx")
    a.get_children2("/zookeeper")
    a.delete("/zookeeper/dx")
    a.exists("/zookeeper")
    a.set_data("/zookeeper", b"zk")
    a.get_data("/zookeeper")
    a.set_data("/zookeeper", b"")
    a.exists("/zookeeper")


@scenario
def quota_enforced(ctx):
    """Both servers run with enforceQuota=true (base_cfg): hard limits refuse
    creates and setData with QuotaExceeded (-125), soft limits do not."""
    r = ctx.root
    q = "/zookeeper/quota" + r
    a = setup(ctx)
    a.create(r + "/q", b"abc")
    a.create(r + "/soft")
    a.create(q)
    a.create(q + "/q")
    # What zkCli 3.7+ writes for `setquota -N 3` then `setquota -B 20`.
    a.create(q + "/q/zookeeper_limits", b"count=-1,bytes=-1=;byteHardLimit=20;countHardLimit=3")
    a.create(q + "/q/zookeeper_stats", b"count=0,bytes=0")
    a.get_data(q + "/q/zookeeper_stats")                # recounted: the root's node and bytes
    a.create(r + "/q/a", b"12345")
    a.create(r + "/q/b")                                # 3 nodes, the root included
    a.create(r + "/q/c")                                # a 4th: refused
    a.create(r + "/q/s-", flags=2)                      # sequential: refused, no counter taken
    a.create_ttl(r + "/q/t", 10000)
    a.call("createContainer", 19, b_create(r + "/q/k", flags=4))
    a.get_children2(r + "/q")
    a.set_data(r + "/q/a", b"x" * 17)                   # 3 + 17 = 20 bytes: allowed
    a.set_data(r + "/q/a", b"x" * 18, version=99)       # the quota is checked before the version
    a.set_data(r + "/q/a", b"x" * 18)
    a.set_data(r + "/q/a", b"")                         # shrinking is allowed
    a.delete(r + "/q/b")
    a.multi("multi(create, create past the byte limit, delete)", [
        (1, b_create(r + "/q/m1")), (1, b_create(r + "/q/m2", b"y" * 30)), (2, b_path_int(r + "/q/a", -1))])
    a.get_children2(r + "/q")
    a.get_data(q + "/q/zookeeper_stats")
    # Soft limits alone are advisory.
    a.create(q + "/soft")
    a.create(q + "/soft/zookeeper_limits", b"count=1,bytes=1")
    a.create(q + "/soft/zookeeper_stats")
    a.create(r + "/soft/x", b"more than a byte")
    a.get_data(q + "/soft/zookeeper_stats")
    # A raised limit counts at once.
    a.set_data(q + "/q/zookeeper_limits", b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=10")
    a.create(r + "/q/c", b"y" * 30)
    a.get_data(q + "/q/zookeeper_stats")


@scenario
def setdata_setacl(ctx):
    r = ctx.root
    ex = r + "/ex"
    a = setup(ctx)
    a.create(ex, b"d")
    a.create(ex + "/b")
    a.set_data(ex + "/b", b"x")
    a.exists(ex)
    a.delete(ex + "/b")
    a.exists(ex)
    a.set_acl(ex, OPEN_ACL)
    a.set_acl(ex, OPEN_ACL, version=5)
    a.set_acl(ex, OPEN_ACL, version=1)
    a.set_data(ex, b"", version=0)
    a.delete(ex + "/none")
    a.exists(ex)
    a.set_data(ex, b"v2", version=0)              # BadVersion
    a.set_data(ex, b"v2", version=-2)
    a.set_data(ex, None, version=1)
    a.get_data(ex)
    a.set_data(ex, b"", version=-1)
    a.get_data(ex)
    a.set_data(r + "/missing", b"x")
    a.set_data(r + "/missing", b"x", version=7)
    a.set_acl(r + "/missing", OPEN_ACL)
    a.set_acl(ex, [])
    a.set_acl(ex, READ_ACL, version=2)
    a.set_data(ex, b"ro")
    a.get_acl(ex)
    a.set_acl(ex, OPEN_ACL)                        # no ADMIN any more
    a.set_data(r, b"rootdata")
    a.get_data(r)
    a.set_data(r, b"z" * 3000)
    a.get_data(r)


@scenario
def delete_errors(ctx):
    r = ctx.root
    a = setup(ctx)
    for p in ("/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config", "noslash", "",
              r + "/nul\x00", "/zookeeper/"):
        a.delete(p)
    a.delete(r + "/x/y/z")
    a.delete(r + "/m/")
    a.create(r + "/m")
    a.delete(r + "/m/")
    a.delete(r + "//m")
    a.create(r + "/m/c")
    a.delete(r + "/m")                             # NotEmpty
    a.delete(r + "/m", version=3)                  # BadVersion before NotEmpty
    a.delete(r + "/m/c", version=1)
    a.delete(r + "/m/c", version=0)
    a.delete(r + "/m/c")
    a.create(r + "/nd", acl=[(31 & ~8, "world", "anyone")])
    a.create(r + "/nd/k")                          # CREATE is allowed
    a.delete(r + "/nd/missing")                    # NoAuth before NoNode
    a.delete(r + "/nd/k")
    a.delete(r + "/nd/k", version=9)
    a.delete(r + "/nd")                            # NotEmpty (needs DELETE on the parent only)
    a.create(r + "/ro", acl=READ_ACL)
    a.delete(r + "/ro")                            # parent r is open: OK
    a.set_data(r + "/m", b"v")
    a.set_data(r + "/m", b"v")
    a.delete(r + "/m", version=1)
    a.delete(r + "/m", version=2)
    a.delete(r + "/m")
    a.get_children2(r)


@scenario
def sequential(ctx):
    r = ctx.root
    a = setup(ctx)
    s = r + "/s"
    a.create(s)
    a.create(s + "/a-", flags=2)
    a.create(s + "/b-", flags=2)
    a.create(s + "/plain")
    a.create(s + "/a-", flags=2)
    a.get_children2(s)
    a.delete(s + "/a-0000000000")
    a.delete(s + "/b-0000000001")
    a.get_children2(s)
    a.create(s + "/plain")                         # NodeExists does not count
    a.create(s + "/nope/x")
    a.create(s + "/", flags=2)
    a.create(s + "/c-", flags=3)
    a.get_children2(s)
    a.create2(s + "/a-0000000006")                 # a plain create with a would-be name
    a.create(s + "/a-", flags=2)                   # collides: NodeExists
    a.create(s + "/a-", flags=2)
    a.get_children2(s)
    for n in list(range(3)):
        a.delete(s + "/a-000000000%d" % (n + 6))
    a.get_children2(s)
    a.exists(r)


@scenario
def ephemerals(ctx):
    r = ctx.root
    a = setup(ctx)
    b = ctx.conn("B")
    a.create(r + "/x")
    for p in ("/e1", "/e2", "/ab", "/abd", "/x/e"):
        a.create2(r + p, flags=1)
    a.create(r + "/q-", flags=3)
    b.create2(r + "/b1", flags=1)
    b.create2(r + "/x/b2", flags=1)
    for pre in ("/", "", r + "/a", r + "/ab", r + "/ab/", r + "/x", r + "/x/", "/nomatch", r, None):
        a.call("getEphemerals(%r)" % (pre,), 103, ustr(pre))
    b.call("getEphemerals('/')", 103, ustr("/"))
    ctx.conn("C").call("getEphemerals('/')", 103, ustr("/"))
    a.create(r + "/e1/c")
    a.create(r + "/e1/c", flags=1)
    a.get_children2(r + "/e1")
    a.exists(r + "/e1")
    a.call("getAllChildrenNumber(r)", 104, ustr(r))
    a.call("getAllChildrenNumber(r/x)", 104, ustr(r + "/x"))
    a.call("getAllChildrenNumber(r/e1)", 104, ustr(r + "/e1"))
    a.call("getAllChildrenNumber(missing)", 104, ustr(r + "/missing"))
    b.exists(r + "/e2", watch=True)
    a.close_session()
    b.drain()
    b.get_children2(r)
    b.get_children2(r + "/x")
    b.call("getEphemerals('/')", 103, ustr("/"))
    b.delete(r + "/b1")
    b.call("getEphemerals('/')", 103, ustr("/"))


@scenario
def multi_ok(ctx):
    r = ctx.root
    a = setup(ctx)
    a.multi("multi(create,create2,container,ttl,setData,check,delete,...)", [
        (1, b_create(r + "/a", b"A")),
        (1, b_create(r + "/b", None)),
        (19, b_create(r + "/c", b"", OPEN_ACL, 4)),
        (21, b_create_ttl(r + "/t", b"", OPEN_ACL, 5, 5000)),
        (5, b_set_data(r + "/a", b"A2", 0)),
        (13, b_path_int(r + "/a", 1)),
        (13, b_path_int(r + "/a", -1)),
        (2, b_path_int(r + "/b", 0)),
        (1, b_create(r + "/s-", b"", OPEN_ACL, 2)),
        (1, b_create(r + "/s-", b"", OPEN_ACL, 2)),
        (1, b_create(r + "/e", b"", OPEN_ACL, 1)),
    ])
    a.get_children2(r)
    a.get_data(r + "/a")
    for n in ("/c", "/t", "/e"):
        a.exists(r + n)
    a.multi("multi(empty)", [])
    a.exists(r)
    a.multi("multi(create,delete same)", [(1, b_create(r + "/tmp")), (2, b_path_int(r + "/tmp", -1))])
    a.get_children2(r)
    a.multi("multi(create parent+child)", [(1, b_create(r + "/p")), (1, b_create(r + "/p/q"))])
    a.multi("multi(delete child+parent)", [(2, b_path_int(r + "/p/q", -1)), (2, b_path_int(r + "/p", -1))])
    a.exists(r)
    a.multi("multi(setData twice)", [(5, b_set_data(r + "/a", b"x", -1)), (5, b_set_data(r + "/a", b"y", 2))])
    a.get_data(r + "/a")


@scenario
def multi_create2(ctx):
    """create2 (15) inside a multi: the result record type and body."""
    r = ctx.root
    a = setup(ctx)
    a.multi("multi(create2,create2 ephemeral,create2 seq)", [
        (15, b_create(r + "/b", None)), (15, b_create(r + "/e", b"x", OPEN_ACL, 1)),
        (15, b_create(r + "/s-", b"", OPEN_ACL, 2))])
    a.get_children2(r)


@scenario
def multi_container_flag(ctx):
    """create (1) / create2 (15) ops with the CONTAINER flag inside a multi."""
    r = ctx.root
    a = setup(ctx)
    a.multi("multi(create flags 4)", [(1, b_create(r + "/c1", b"", OPEN_ACL, 4))])
    a.multi("multi(create2 flags 4)", [(15, b_create(r + "/c2", b"", OPEN_ACL, 4))])
    a.multi("multi(create flags 4, create child)", [
        (1, b_create(r + "/c3", b"", OPEN_ACL, 4)), (1, b_create(r + "/c3/k"))])
    a.multi("multi(createContainer flags 2)", [(19, b_create(r + "/cs-", b"", OPEN_ACL, 2))])
    a.multi("multi(createContainer flags 0)", [(19, b_create(r + "/c0", b"", OPEN_ACL, 0))])
    a.multi("multi(createContainer flags 1)", [(19, b_create(r + "/c1e", b"", OPEN_ACL, 1))])
    a.exists(r + "/c1e")
    a.get_children2(r)


@scenario
def multi_ttl_flags(ctx):
    """createTTL (21) inside a multi with flags that are not TTL flags; TTL flags in a create op."""
    r = ctx.root
    a = setup(ctx)
    a.multi("multi(createTTL flags 0)", [(21, b_create_ttl(r + "/t0", b"", OPEN_ACL, 0, 99))])
    a.multi("multi(createTTL flags 4)", [(21, b_create_ttl(r + "/t4", b"", OPEN_ACL, 4, 99))])
    a.multi("multi(createTTL flags 1)", [(21, b_create_ttl(r + "/t1", b"", OPEN_ACL, 1, 99))])
    a.exists(r)
    a.multi("multi(create flags 5)", [(1, b_create(r + "/tf", flags=5))])
    a.exists(r)
    a.multi("multi(create2 flags 6)", [(15, b_create(r + "/tf6", flags=6))])
    a.exists(r)
    a.get_children2(r)


@scenario
def multi_fail(ctx):
    r = ctx.root
    a = setup(ctx)
    a.create(r + "/a", b"A")
    a.create(r + "/eph", flags=1)
    a.multi("multi(create,delete missing,setData)", [
        (1, b_create(r + "/f1")), (2, b_path_int(r + "/nonexist", -1)), (5, b_set_data(r + "/a", b"z"))])
    a.exists(r + "/f1")
    a.get_data(r + "/a")
    a.multi("multi(seq,seq,create existing)", [
        (1, b_create(r + "/s-", flags=2)), (1, b_create(r + "/s-", flags=2)), (1, b_create(r + "/a"))])
    a.multi("multi(seq)", [(1, b_create(r + "/s-", flags=2))])
    a.multi("multi(check bad version)", [(13, b_path_int(r + "/a", 5)), (1, b_create(r + "/f2"))])
    a.multi("multi(check missing)", [(1, b_create(r + "/f3")), (13, b_path_int(r + "/missing", -1))])
    a.multi("multi(check invalid path)", [(13, b_path_int(r + "/a/", -1))])
    a.multi("multi(create under ephemeral)", [(15, b_create(r + "/eph/x"))])
    a.multi("multi(setData bad version)", [(5, b_set_data(r + "/a", b"q", 9)), (2, b_path_int(r + "/a", -1))])
    a.multi("multi(delete not empty)", [(1, b_create(r + "/a/k")), (2, b_path_int(r + "/a", -1))])
    a.multi("multi(invalid acl)", [(1, b_create(r + "/ia", acl=[]))])
    a.multi("multi(bad flags)", [(1, b_create(r + "/bf", flags=9))])
    a.multi("multi(ttl 0)", [(21, b_create_ttl(r + "/t0", ttl=0))])
    a.multi("multi(NoAuth)", [(1, b_create(r + "/na", acl=READ_ACL)), (1, b_create(r + "/na/x"))])
    a.multi("multi(delete special)", [(2, b_path_int("/zookeeper", -1))])
    a.multi("multi(create 2x same)", [(1, b_create(r + "/dup")), (1, b_create(r + "/dup"))])
    a.get_children2(r)
    a.exists(r + "/a")


@scenario
def multi_malformed(ctx):
    r = ctx.root
    a = setup(ctx)
    a.create(r + "/a")
    for label, ops in (("multi(getData in write multi)", [(1, b_create(r + "/m1")), (4, b_path_watch(r + "/a"))]),
                       ("multi(only reads)", [(4, b_path_watch(r + "/a"))]),
                       ("multi(setACL op)", [(7, b_set_acl(r + "/a", OPEN_ACL))]),
                       ("multi(deleteContainer op)", [(20, ustr(r + "/a"))]),
                       ("multi(unknown op 99)", [(99, b"")])):
        a.multi(label, ops)
        a.exists(r)


@scenario
def multi_read(ctx):
    r = ctx.root
    a = setup(ctx)
    b = ctx.conn("B")
    a.create(r + "/a", b"A")
    a.create(r + "/a/k")
    a.multi("multiRead(getData,getChildren,getData missing,getChildren missing)", [
        (4, b_path_watch(r + "/a", True)), (8, b_path_watch(r + "/a", True)),
        (4, b_path_watch(r + "/missing")), (8, b_path_watch(r + "/missing"))], op=22)
    b.set_data(r + "/a", b"B")
    b.create(r + "/a/k2")
    a.drain()                                      # multiRead set no watches
    a.multi("multiRead(empty)", [], op=22)
    a.multi("multiRead(with create)", [(4, b_path_watch(r + "/a")), (1, b_create(r + "/w"))], op=22)
    a.multi("multiRead(check op)", [(13, b_path_int(r + "/a", -1))], op=22)
    a.exists(r + "/w")
    a.create(r + "/acl", b"s", acl=[(31, "digest", digest_id("u:p"))])
    a.multi("multiRead(NoAuth,ok)", [(4, b_path_watch(r + "/acl")), (4, b_path_watch(r + "/a")),
                                     (8, b_path_watch(r + "/acl"))], op=22)
    a.multi("multiRead(invalid path)", [(4, b_path_watch("noslash")), (8, b_path_watch(""))], op=22)


@scenario
def pipelining(ctx):
    r = ctx.root
    a = setup(ctx)
    # connect, auth and requests in a single write, before the connect response
    p = ctx.raw_conn("P")
    frames = [i32(0) + i64(0) + i32(30000) + i64(0) + buf(b"\0" * 16) + boolean(False),
              i32(-4) + i32(100) + i32(0) + ustr("digest") + buf(b"u:p"),
              i32(1) + i32(1) + b_create(r + "/pa", b"d", [(31, "auth", "")]),
              i32(2) + i32(6) + ustr(r + "/pa"),
              i32(3) + i32(4) + b_path_watch(r + "/pa", True)]
    p.send_raw(b"".join(i32(len(f)) + f for f in frames))
    p.read_connect_response()
    p.session_ok = True
    p.xid = 3
    for label, op in (("addAuth", 100), ("create(auth acl)", 1), ("getACL", 6), ("getData(w)", 4)):
        p.read_reply(label, op)
    a.get_data(r + "/pa")
    # a burst of mixed requests on one connection
    reqs = []
    for i in range(6):
        reqs.append(("create s-", 1, b_create(r + "/s-", b"%d" % i, OPEN_ACL, 2)))
        reqs.append(("getChildren2", 12, b_path_watch(r)))
    reqs += [("setData pa", 5, b_set_data(r + "/pa", b"x")), ("exists pa", 3, b_path_watch(r + "/pa")),
             ("delete s-0000000002", 2, b_path_int(r + "/s-0000000002", -1)), ("sync", 9, ustr(r)),
             ("multi", 14, multi_body([(1, b_create(r + "/m")), (2, b_path_int(r + "/m", -1))])),
             ("getData s-0000000001", 4, b_path_watch(r + "/s-0000000001")), ("ping", 11, b"")]
    p.pipeline(reqs)
    a.get_children2(r)


@scenario
def watch_oneshot(ctx):
    r = ctx.root
    a = setup(ctx)
    b = ctx.conn("B")
    x = r + "/x"
    a.exists(x, watch=True)
    b.create(x, b"1")
    a.drain()
    a.get_data(x, watch=True)
    a.get_children(x, watch=True)
    b.set_data(x, b"2")
    a.drain()
    b.set_data(x, b"3")
    a.drain()                                      # one-shot: nothing
    a.get_data(r + "/missing", watch=True)
    a.get_children(r + "/missing", watch=True)
    b.create(r + "/missing")
    a.drain()                                      # no watch was left
    b.create(x + "/c")
    a.drain()
    a.get_children2(x, watch=True)
    a.exists(x, watch=True)
    a.get_data(x, watch=True)
    b.delete(x + "/c")
    a.drain()
    a.get_children(x, watch=True)
    a.get_children(r, watch=True)
    b.delete(x)                                    # data+exist+child watches: one NodeDeleted
    a.drain()
    b.create(x)
    a.drain()
    # several connections watching the same node
    c = ctx.conn("C")
    for conn in (a, c):
        conn.get_data(x, watch=True)
    b.set_data(x, b"4")
    c.drain()
    a.drain()


@scenario
def watch_order(ctx):
    r = ctx.root
    a = setup(ctx)
    b = ctx.conn("B")
    x = r + "/x"
    a.create(x, b"0")
    a.get_data(x, watch=True)
    a.set_data(x, b"1")                            # event before the writer's own reply
    a.exists(r + "/y", watch=True)
    a.get_children(r, watch=True)
    a.multi("multi(create y,setData y,delete y)", [
        (1, b_create(r + "/y")), (5, b_set_data(r + "/y", b"v")), (2, b_path_int(r + "/y", -1))])
    b.get_data(x, watch=True)
    a.set_data(x, b"2")
    b.get_data(x)                                  # the event comes before this reply
    b.exists(x, watch=True)
    b.get_children(x, watch=True)
    a.get_children(r, watch=True)
    a.get_data(x, watch=True)
    a.delete(x)                                    # writer's own events first
    b.exists(x)
    a.get_children(r, watch=True)
    a.exists(r + "/z1", watch=True)
    a.exists(r + "/z2", watch=True)
    a.multi("multi(create z1,create z2)", [(1, b_create(r + "/z1")), (1, b_create(r + "/z2"))])
    a.get_data(r + "/z1", watch=True)
    a.get_data(r + "/z2", watch=True)
    a.get_children(r, watch=True)
    a.multi("multi failing(setData z1,setData z2,delete missing)", [
        (5, b_set_data(r + "/z1", b"v")), (5, b_set_data(r + "/z2", b"v")), (2, b_path_int(r + "/nope", -1))])
    a.multi("multi(setData z2,delete z1)", [(5, b_set_data(r + "/z2", b"v")), (2, b_path_int(r + "/z1", -1))])


@scenario
def watch_persistent(ctx):
    r = ctx.root
    a = setup(ctx)
    b = ctx.conn("B")
    p = r + "/p"
    a.add_watch(p, 0)
    for act in (lambda: b.create(p, b"0"), lambda: b.create(p + "/c"), lambda: b.set_data(p, b"1"),
                lambda: b.set_data(p + "/c", b"1"), lambda: b.create(p + "/c/g"),
                lambda: b.delete(p + "/c/g"), lambda: b.delete(p + "/c"), lambda: b.delete(p),
                lambda: b.create(p)):
        act()
        a.drain()
    a.add_watch(p, 2)
    a.add_watch(p, -1)
    a.add_watch("noslash", 0)
    a.add_watch("", 0)
    q = r + "/q"
    a.add_watch(q, 1)
    for act in (lambda: b.create(q), lambda: b.create(q + "/a"), lambda: b.create(q + "/a/b"),
                lambda: b.set_data(q + "/a/b", b"x"), lambda: b.delete(q + "/a/b"),
                lambda: b.set_data(q, b"y"), lambda: b.create(r + "/qq"), lambda: b.delete(q + "/a"),
                lambda: b.delete(q), lambda: b.create(q)):
        act()
        a.drain()
    a.multi("multi under recursive watch", [(1, b_create(q + "/m1")), (1, b_create(q + "/m1/m2")),
                                            (5, b_set_data(q, b"z"))])
    # the writer's own recursive watch
    b.add_watch(r + "/own", 1)
    b.create(r + "/own")
    b.create(r + "/own/x")
    a.add_watch(r, 1)
    b.create(r + "/top")
    a.drain()
    # the recursive watch on r and the one on q: one event per connection per trigger
    b.create(q + "/n")
    a.drain()


@scenario
def watch_remove_check(ctx):
    r = ctx.root
    a = setup(ctx)
    b = ctx.conn("B")
    x = r + "/x"
    a.create(x)
    a.get_data(x, watch=True)
    a.get_children(x, watch=True)
    for t in (1, 2, 3, 4, 5, 0, 6, -1):
        a.check_watches(x, t)
    a.check_watches(r + "/none", 2)
    a.check_watches(r + "/none", 3)
    a.remove_watches(x, 2)
    a.check_watches(x, 2)
    a.check_watches(x, 1)
    a.remove_watches(x, 2)
    a.remove_watches(x, 3)
    a.check_watches(x, 1)
    a.check_watches(x, 3)
    a.remove_watches(x, 3)
    b.set_data(x, b"1")
    b.create(x + "/c")
    a.drain()                                      # nothing: removed, no server events
    a.exists(r + "/nx", watch=True)
    a.check_watches(r + "/nx", 2)
    a.remove_watches(r + "/nx", 1)
    a.remove_watches(r + "/nx", 2)
    b.create(r + "/nx")
    a.drain()
    b.get_data(x, watch=True)
    a.remove_watches(x, 3)                         # B's watch is not A's
    b.check_watches(x, 2)
    a.remove_watches("", 3)
    a.check_watches("", 3)


@scenario
def watch_check_persistent(ctx):
    """checkWatches/removeWatches against persistent and recursive watches (3.8 rules)."""
    r = ctx.root
    a = setup(ctx)
    b = ctx.conn("B")
    x = r + "/x"
    a.create(x)
    a.add_watch(x, 0)
    for t in (1, 2, 3):
        a.check_watches(x, t)
    a.remove_watches(x, 4)
    a.remove_watches(x, 5)
    a.remove_watches(x, 9)
    a.remove_watches(x, 1)
    a.remove_watches(x, 2)
    a.check_watches(x, 3)
    a.remove_watches(x, 3)
    a.check_watches(x, 3)
    b.set_data(x, b"2")
    a.drain()
    a.add_watch(x, 1)
    for t in (1, 2, 3):
        a.check_watches(x, t)
    a.remove_watches(x, 3)
    b.set_data(x, b"3")
    a.drain()
    a.add_watch(x, 1)
    a.remove_watches(x, 1)
    a.check_watches(x, 2)
    a.check_watches(x, 3)
    a.remove_watches(x, 2)
    a.check_watches(x, 3)


@scenario
def watch_check_bad_path(ctx):
    r = ctx.root
    a = setup(ctx)
    a.get_data(r, watch=True)
    for p in ("noslash", r + "/", r + "//x", "/a/../b"):
        a.check_watches(p, 3)
        a.check_watches(p, 2)
        a.remove_watches(p, 3)
    a.check_watches(r, 2)


@scenario
def set_watches(ctx):
    r = ctx.root
    a = setup(ctx)
    for n in ("/d", "/g", "/u", "/c", "/cg", "/e", "/cu"):
        a.create(r + n, b"0")
    a.exists(r)
    rel = a.last_zxid
    b = ctx.conn("B")
    b.set_data(r + "/d", b"1")
    b.delete(r + "/g")
    b.create(r + "/c/k")
    b.delete(r + "/cg")
    b.create(r + "/e2")
    b.set_data(r + "/cu", b"1")                    # data change only: no child catch-up
    w = ctx.conn("W")
    w.call("setWatches", 101, b_set_watches(
        rel, data=[r + "/d", r + "/g", r + "/u", r + "/cu"], exist=[r + "/e2", r + "/nx", r + "/e"],
        child=[r + "/c", r + "/cg", r + "/u", r + "/cu"]), xid=-8)
    for act in (lambda: b.set_data(r + "/u", b"1"), lambda: b.create(r + "/nx"),
                lambda: b.create(r + "/u/k"), lambda: b.set_data(r + "/e", b"1"),
                lambda: b.create(r + "/cu/k"), lambda: b.set_data(r + "/d", b"2"),
                lambda: b.set_data(r + "/e2", b"1")):
        act()
        w.drain()
    # relativeZxid 0 with everything present
    w2 = ctx.conn("W2")
    w2.call("setWatches(rel=0)", 101, b_set_watches(
        0, data=[r + "/u"], exist=[r + "/u"], child=[r + "/u"]), xid=-8)
    # relativeZxid ahead of everything: no immediate events
    w2.call("setWatches(rel=latest)", 101, b_set_watches(
        b.last_zxid + 100, data=[r + "/d"], exist=[r + "/missing2"], child=[r + "/d"]), xid=-8)
    b.set_data(r + "/d", b"3")
    w2.drain()
    w2.call("setWatches(xid 33)", 101, b_set_watches(b.last_zxid, data=[r + "/d"]), xid=33)
    w2.call("setWatches(empty)", 101, b_set_watches(0), xid=-8)
    w2.call("setWatches(truncated)", 101, i64(0) + i32(1), xid=-8)
    # setWatches2 with persistent lists: no catch-up events for persistent watches
    w3 = ctx.conn("W3")
    w3.call("setWatches2", 105, b_set_watches(
        rel, data=[r + "/d"], exist=[], child=[], persistent=[r + "/u", r + "/g"],
        recursive=[r + "/c", r + "/gone"]), xid=-8)
    for act in (lambda: b.set_data(r + "/u", b"2"), lambda: b.create(r + "/c/k2"),
                lambda: b.create(r + "/g"), lambda: b.set_data(r + "/c/k", b"z"),
                lambda: b.create(r + "/u/k2"), lambda: b.set_data(r + "/d", b"4")):
        act()
        w3.drain()
    w3.call("setWatches2(data only lists)", 105, b_set_watches(
        0, data=[r + "/d"], persistent=[], recursive=[]), xid=-8)


@scenario
def set_watches_null(ctx):
    r = ctx.root
    a = setup(ctx)
    a.create(r + "/d")
    w = ctx.conn("W")
    w.call("setWatches(null data vector)", 101, i64(0) + vec(None, ustr) + vec([], ustr) + vec([], ustr),
           xid=-8)
    w.call("setWatches(null child vector)", 101, i64(0) + vec([r + "/d"], ustr) + vec([], ustr) + vec(None, ustr),
           xid=-8)
    a.set_data(r + "/d", b"x")
    w.drain()


@scenario
def acl_digest(ctx):
    r = ctx.root
    a = setup(ctx)
    bob = digest_id("bob:secret")
    a.add_auth("digest", "bob:secret")
    a.create(r + "/bob", b"b", acl=[(31, "digest", bob)])
    a.get_acl(r + "/bob")
    a.get_data(r + "/bob")
    b = ctx.conn("B")
    b.get_data(r + "/bob")
    b.exists(r + "/bob")                           # no ACL check on exists in 3.8
    b.set_data(r + "/bob", b"x")
    b.get_acl(r + "/bob")
    b.get_children(r + "/bob")
    b.get_children2(r + "/bob")
    b.create(r + "/bob/x")
    b.delete(r + "/bob/missing")                   # NoAuth before NoNode
    b.set_acl(r + "/bob", OPEN_ACL)
    b.call("getAllChildrenNumber", 104, ustr(r + "/bob"))
    b.get_data(r + "/bob", watch=True)
    a.set_data(r + "/bob", b"b2")
    b.drain()                                      # no watch was set
    # masking of digest ids without ADMIN
    a.create(r + "/mask", acl=[(1, "world", "anyone"), (31, "digest", bob), (3, "digest", digest_id("al:pw"))])
    b.get_acl(r + "/mask")
    a.get_acl(r + "/mask")
    a.create(r + "/admin", acl=[(17, "world", "anyone"), (31, "digest", bob)])
    b.get_acl(r + "/admin")
    a.create(r + "/adm-only", acl=[(16, "world", "anyone"), (1, "digest", bob)])
    b.get_acl(r + "/adm-only")
    b.get_data(r + "/adm-only")
    a.create(r + "/ro", b"r", acl=READ_ACL)
    b.get_data(r + "/ro")
    b.set_data(r + "/ro", b"x")
    b.get_acl(r + "/ro")
    b.create(r + "/ro/k")
    # wrong password: accepted silently, grants nothing
    b.add_auth("digest", "bob:wrong")
    b.get_data(r + "/bob")
    b.add_auth("digest", "nocolon")
    b.call("whoAmI", 107)
    b.add_auth("digest", "bob:secret")
    b.get_data(r + "/bob")
    b.get_acl(r + "/mask")
    b.add_auth("digest", "bob:secret")             # twice: no duplicate identity
    b.call("whoAmI", 107)
    a.call("whoAmI", 107)
    ctx.conn("C").call("whoAmI", 107)
    # the auth scheme: only the session's digest identities
    c = ctx.conn("D")
    c.create(r + "/au0", acl=[(31, "auth", "")])
    c.add_auth("ip", "whatever")
    c.create(r + "/au1", acl=[(31, "auth", "")])
    c.add_auth("digest", "u1:p1")
    c.create(r + "/au2", acl=[(31, "auth", "ignored text")])
    c.get_acl(r + "/au2")
    c.add_auth("digest", "u2:p2")
    c.create(r + "/au3", acl=[(7, "auth", ""), (1, "world", "anyone")])
    c.get_acl_sorted(r + "/au3")
    c.create(r + "/au4", acl=[(31, "auth", ""), (31, "digest", digest_id("u1:p1"))])
    c.get_acl_sorted(r + "/au4")
    c.call("whoAmI", 107)
    # permission check before NodeExists
    a.create(r + "/nc")
    a.create(r + "/nc/k")
    a.set_acl(r + "/nc", READ_ACL)
    b.create(r + "/nc/k")
    b.create(r + "/nc/new")
    b.delete(r + "/nc/k")
    b.set_acl(r + "/nc", OPEN_ACL)
    # perms 0 and perms above 31 are stored as given
    a.create(r + "/p0", acl=[(0, "world", "anyone")])
    a.get_data(r + "/p0")
    a.get_acl(r + "/p0")
    a.create(r + "/p99", acl=[(0x7fffffff, "world", "anyone")])
    a.get_acl(r + "/p99")
    a.create(r + "/dupacl", acl=[(31, "world", "anyone"), (31, "world", "anyone"), (1, "world", "anyone")])
    a.get_acl(r + "/dupacl")


@scenario
def acl_invalid(ctx):
    r = ctx.root
    a = setup(ctx)
    bad = [
        [], None, [(31, "world", "foo")], [(31, "World", "anyone")], [(31, "foo", "bar")],
        [(31, "digest", "nocolon")], [(31, "digest", "u:")], [(31, "digest", "a:b:c")],
        [(31, "super", "x")], [(31, "auth", "")], [(31, "ip", "127.0.0.1/33")], [(31, "ip", "1.2.3")],
        [(31, "ip", "300.1.1.1")], [(31, "ip", "1.2.3.4/-1")], [(31, "ip", "a.b.c.d")],
        [(31, "ip", "1.2.3.4/x")], [(31, "ip", "")], [(31, "world", "anyone"), (31, "foo", "bar")],
        [(31, "sasl", "x")], [(31, "x509", "CN=x")],
    ]
    for i, acl in enumerate(bad):
        a.create("%s/bad%d" % (r, i), acl=acl, label="create(bad%d acl=%r)" % (i, acl))
    good = [
        [(31, "digest", ":h")], [(31, "digest", "u:h")], [(31, "digest", "u:h:")],
        [(31, "ip", "127.0.0.1")], [(31, "ip", "127.0.0.0/8")], [(31, "ip", "10.0.0.0/8")],
        [(31, "ip", "0.0.0.0/0")], [(31, "ip", "127.0.0.1/32")], [(31, "ip", "+1.2.3.4")],
    ]
    for i, acl in enumerate(good):
        a.create("%s/good%d" % (r, i), acl=acl, label="create(good%d acl=%r)" % (i, acl))
        a.get_acl("%s/good%d" % (r, i))
        a.get_data("%s/good%d" % (r, i))
    a.create(r + "/s")
    a.set_acl(r + "/s", [])
    a.set_acl(r + "/s", [(31, "world", "foo")])
    a.set_acl(r + "/s", [(31, "auth", "")])
    a.set_acl(r + "/missing", [])                  # InvalidACL before NoNode
    a.set_acl("noslash", [])                       # BadArguments before InvalidACL


@scenario
def acl_null_fields(ctx):
    r = ctx.root
    a = setup(ctx)
    a.create(r + "/ns", acl=[(31, None, "anyone")], label="create(acl scheme null)")
    a.create(r + "/ni", acl=[(31, "world", None)], label="create(acl id null)")
    a.create(r + "/nd", acl=[(31, "digest", None)], label="create(digest id null)")
    a.create(r + "/na", acl=[(31, "auth", None)], label="create(auth id null)")
    a.exists(r)


@scenario
def acl_super_ip(ctx):
    r = ctx.root
    a = setup(ctx)
    a.add_auth("digest", "bob:secret")
    a.create(r + "/bob", b"b", acl=[(31, "digest", digest_id("bob:secret"))])
    a.create(r + "/bob/k")
    s = ctx.conn("S")
    s.add_auth("digest", "super:test")
    s.call("whoAmI", 107)
    s.get_data(r + "/bob")
    s.get_acl(r + "/bob")
    s.set_data(r + "/bob", b"s")
    s.create(r + "/bob/s")
    s.delete(r + "/bob/s")
    s.set_acl(r + "/bob", [(1, "digest", digest_id("bob:secret"))])
    s.create(r + "/sup", acl=[(31, "auth", "")])
    s.get_acl(r + "/sup")
    s.create(r + "/none", acl=[(0, "world", "anyone")])
    s.get_data(r + "/none")
    a.set_data(r + "/bob", b"x")
    t = ctx.conn("T")
    t.add_auth("digest", "super:wrong")
    t.get_data(r + "/bob")
    t.call("whoAmI", 107)
    # ip ACLs
    for name, acl in (("ip1", "127.0.0.1"), ("ip8", "127.0.0.0/8"), ("ip10", "10.0.0.0/8"),
                      ("ip0", "0.0.0.0/0"), ("ip32", "127.0.0.2/32"), ("ip31", "127.0.0.0/31"),
                      ("ip30", "127.0.0.4/30")):
        a.create(r + "/" + name, b"d", acl=[(31, "ip", acl)])
        a.get_data(r + "/" + name)
        a.get_acl(r + "/" + name)
    b = ctx.conn("B")
    b.add_auth("ip", "10.1.1.1")
    b.get_data(r + "/ip10")
    b.call("whoAmI", 107)
    b.create(r + "/ip8/child")
    b.create(r + "/ipauth", acl=[(31, "auth", "")])


@scenario
def auth_fail(ctx):
    for i, (scheme, auth) in enumerate((("foo", "bar"), ("world", "anyone"), ("super", "x"),
                                        ("World", "anyone"), ("", ""), ("sasl", "x"),
                                        ("auth", ""))):
        c = ctx.conn("C%d" % i)
        if i == 0:
            c.create(ctx.root)
        c.add_auth(scheme, auth)
        c.expect_closed()
    d = ctx.conn("D")
    d.add_auth("digest", "u:p", xid=5)
    d.add_auth("digest", "", xid=0)
    d.add_auth("digest", b"\xff\xfe")
    d.add_auth("ip", "x")
    d.call("whoAmI", 107)
    d.exists(ctx.root)
    d.call("addAuth(null scheme)", 100, i32(0) + ustr(None) + buf(b"x"), xid=-4)
    d.expect_closed()


@scenario
def auth_truncated(ctx):
    a = setup(ctx)
    e = ctx.conn("E")
    e.call("addAuth(truncated)", 100, i32(0) + i32(10) + b"dig", xid=-4)
    e.expect_closed(timeout=1.0)
    f = ctx.conn("F")
    f.call("addAuth(no auth buffer)", 100, i32(0) + ustr("digest"), xid=-4)
    f.expect_closed(timeout=1.0)
    a.exists(ctx.root)


@scenario
def misc_ops(ctx):
    r = ctx.root
    a = setup(ctx)
    a.create(r + "/a")
    a.create(r + "/a/b")
    a.create(r + "/a/b/c")
    a.create(r + "/a2")
    for p in (r, r + "/missing", "", "noslash", r + "/a/"):
        a.call("sync(%r)" % p, 9, ustr(p))
    for p in (r, r + "/a", r + "/a/b/c", r + "/missing", "/zookeeper", r + "/a/"):
        a.call("getAllChildrenNumber(%r)" % p, 104, ustr(p))
    a.call("whoAmI", 107)
    a.call("whoAmI(with body)", 107, b"\x00\x00\x00\x01x")
    a.call("sasl", 102, buf(b"abc"))
    a.call("sasl(empty token)", 102, buf(b""))
    a.call("sasl(xid -4)", 102, buf(b""), xid=-4)
    a.exists(r)
    a.call("reconfig", 16, ustr("server.5=127.0.0.1:1:2") + ustr(None) + ustr(None) + i64(-1))
    a.call("reconfig(empty)", 16, ustr(None) + ustr(None) + ustr(None) + i64(-1))
    a.exists(r)
    a.call("ping", 11, xid=-2)
    a.call("ping(xid 1000)", 11, xid=1000)
    a.call("ping(with body)", 11, b"abcdef", xid=-2)
    a.call("getChildren2(r)", 12, b_path_watch(r))
    a.call("getChildren(r, trailing bytes)", 8, b_path_watch(r) + b"garbage")
    a.call("exists(r, watch byte 7)", 3, ustr(r) + b"\x07")
    a.set_data(r + "/a", b"x")
    a.drain()


@scenario
def sasl_malformed(ctx):
    a = setup(ctx)
    s = ctx.conn("S")
    s.call("sasl(null token)", 102, buf(None))
    s.expect_closed(timeout=SILENCE_TIMEOUT)
    s2 = ctx.conn("S2")
    s2.call("sasl(no body)", 102, b"")
    s2.expect_closed(timeout=0.3)
    a.exists(ctx.root)


@scenario
def bad_opcodes(ctx):
    r = ctx.root
    a = setup(ctx)
    for i, (label, op, body) in enumerate((("op 99", 99, b"xyz"), ("op 0", 0, b""),
                                           ("op 10", 10, ustr(r)), ("op -1", -1, b""),
                                           ("op 1000", 1000, b""))):
        c = ctx.conn("C%d" % i)
        c.call(label, op, body)
        c.expect_closed()
    a.exists(r)


@scenario
def truncated_reads(ctx):
    r = ctx.root
    a = setup(ctx)
    d = ctx.conn("D")
    d.call("getData(truncated)", 4, i32(10) + b"/ab")
    d.call("getData(no body)", 4, b"")
    d.call("exists(no watch byte)", 3, ustr(r))
    d.exists(r)
    d.call("multiRead(truncated)", 22, i32(4) + boolean(False))
    d.call("getChildren(bad string length)", 8, i32(-7) + boolean(False))
    d.call("addWatch(truncated)", 106, ustr(r))
    d.call("checkWatches(truncated)", 17, ustr(r))
    d.call("removeWatches(truncated)", 18, ustr(r))
    d.call("getEphemerals(no body)", 103, b"")
    d.call("getAllChildrenNumber(no body)", 104, b"")
    d.call("sync(no body)", 9, b"")
    d.call("getACL(no body)", 6, b"")
    d.call("getChildren2(truncated)", 12, ustr(r))
    d.call("setWatches(truncated)", 101, i64(0) + i32(1), xid=-8)
    d.get_children2(r)
    a.exists(r)


@scenario
def truncated_writes(ctx):
    r = ctx.root
    a = setup(ctx)
    a.create(r + "/a")
    d = ctx.conn("D")
    for label, op, body in (
            ("create(truncated)", 1, ustr(r + "/t") + i32(5) + b"ab"),
            ("create(no flags)", 1, ustr(r + "/t") + buf(b"") + acl_vec(OPEN_ACL)),
            ("setData(truncated)", 5, ustr(r + "/a") + buf(b"x")),
            ("delete(truncated)", 2, ustr(r + "/a")),
            ("setACL(truncated)", 7, ustr(r) + i32(1)),
            ("createTTL(no ttl)", 21, b_create(r + "/ttl", flags=5)),
            ("create(huge string length)", 1, i32(0x7fffffff) + b"ab"),
            ("reconfig(truncated)", 16, ustr(None)),
            ("multi(truncated)", 14, i32(1) + boolean(False) + i32(-1) + ustr(r + "/m")),
            ("multi(no end)", 14, i32(1) + boolean(False) + i32(-1) + b_create(r + "/m"))):
        d.call(label, op, body)
        d.exists(r)
    d.get_children2(r)


@scenario
def negative_vector_count(ctx):
    """A vector count below -1 decodes as an empty list (jute), not as an error."""
    r = ctx.root
    a = setup(ctx)
    a.call("create(acl count -3)", 1, ustr(r + "/negacl") + buf(b"") + i32(-3) + i32(0))
    a.call("setACL(acl count -2)", 7, ustr(r) + i32(-2) + i32(-1))
    a.call("setWatches(count -5)", 101, i64(0) + i32(-5) + i32(-5) + i32(-5), xid=-8)
    a.exists(r)


@scenario
def frame_limits(ctx):
    r = ctx.root
    a = setup(ctx)
    a.create(r + "/a")
    e = ctx.raw_conn("E")
    e.connect()
    e.send_raw(i32(0x100000))                      # one byte over jute.maxbuffer
    e.expect_closed(label="frame length 0x100000")
    f = ctx.raw_conn("F")
    f.connect()
    f.send_raw(i32(-5))
    f.expect_closed(label="frame length -5")
    g = ctx.raw_conn("G")
    g.connect()
    head = i32(g.next_xid()) + i32(5) + ustr(r + "/a")
    data_len = 0xfffff - len(head) - 8
    g.send_frame(head + buf(b"d" * data_len) + i32(-1))  # exactly 1,048,575 bytes
    g.read_reply("setData(frame of 1048575 bytes)", 5)
    g.get_data(r + "/a")
    h = ctx.raw_conn("H")
    h.send_raw(i32(8))
    h.expect_closed(timeout=1.0, label="connect frame announced, never sent")
    i = ctx.raw_conn("I")
    i.send_raw(i32(0))
    i.expect_closed(timeout=1.0, label="empty connect request")
    k = ctx.raw_conn("K")
    k.send_frame(i32(0) + i64(0) + i32(30000))
    k.expect_closed(timeout=1.0, label="truncated connect request")
    j = ctx.raw_conn("J")
    j.connect(label="connect with trailing bytes", send_readonly=False)
    j.sock.close()
    j.open = False
    j2 = ctx.raw_conn("J2")
    j2.send_frame(i32(0) + i64(0) + i32(30000) + i64(0) + buf(b"\0" * 16) + b"\x00" + b"extra")
    fr = j2.read_frame(REPLY_TIMEOUT)
    j2.log("connect with trailing bytes -> %s" % (fr if isinstance(fr, str) else "len=%d" % len(fr)))
    j2.session_ok = True
    j2.exists(r)
    a.exists(r)


@scenario
def four_letter_words(ctx):
    r = ctx.root
    a = setup(ctx)
    for w in ("ruok", "isro", "crst", "srst", "gtmk"):
        out, closed = ctx.four(w)
        ctx.log("4lw %s -> %r closed=%s" % (w, out, closed))
    # stmk sets the trace mask (a big-endian long after the word) and prints it.
    out, closed = ctx.four("stmk", extra=i64(0x1F2))
    ctx.log("4lw stmk 0x1F2 -> %r closed=%s" % (out, closed))
    out, closed = ctx.four("gtmk")
    ctx.log("4lw gtmk after stmk -> %r closed=%s" % (out, closed))
    ctx.four("stmk", extra=i64(306))
    def srvr():
        out, closed = ctx.four("srvr")
        fields = {}
        for line in out.splitlines():
            k, _, v = line.partition(":")
            fields[k] = v.strip()
        return out, closed, fields

    out, closed, before = srvr()
    for k in ("Mode", "Outstanding"):
        ctx.log("4lw srvr %s=%s" % (k, before.get(k)))
    ctx.log("4lw srvr Zxid=%s" % ctx.norm.z(int(before.get("Zxid", "-0x1"), 16)))
    ctx.log("4lw srvr keys=%s closed=%s" % (list(before), closed))
    mntr_before = dict(l.split("\t", 1) for l in ctx.four("mntr")[0].splitlines() if "\t" in l)
    # node counts depend on earlier scenarios: compare how they move
    a.create(r + "/n1")
    a.create(r + "/n1/n2", b"xyz")
    a.create(r + "/e", flags=1)
    a.delete(r + "/n1/n2")
    _, _, after = srvr()
    ctx.log("4lw srvr Node count delta=%d Zxid=%s" % (
        int(after["Node count"]) - int(before["Node count"]), ctx.norm.z(int(after["Zxid"], 16))))
    out, closed = ctx.four("stat")
    lines = out.splitlines()
    ctx.log("4lw stat first key=%r has Clients line=%s closed=%s" % (
        lines[0].partition(":")[0] if lines else None, "Clients:" in lines, closed))
    ctx.log("4lw stat keys after clients=%s" % [l.partition(":")[0] for l in lines
                                                 if ":" in l and not l.startswith(" ")][1:])
    out, closed = ctx.four("conf")
    ctx.log("4lw conf keys=%s" % sorted(l.partition("=")[0] for l in out.splitlines() if l))
    conf = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
    ctx.log("4lw conf tickTime=%s minSessionTimeout=%s maxSessionTimeout=%s" % (
        conf.get("tickTime"), conf.get("minSessionTimeout"), conf.get("maxSessionTimeout")))
    out, closed = ctx.four("envi")
    ctx.log("4lw envi first line=%r has zookeeper.version=%s" % (
        out.splitlines()[0] if out else None, "zookeeper.version=" in out))
    out, closed = ctx.four("dirs")
    ctx.log("4lw dirs keys=%s" % [l.partition(":")[0] for l in out.splitlines()])
    out, closed = ctx.four("mntr")
    mntr = dict(l.split("\t", 1) for l in out.splitlines() if "\t" in l)
    ctx.log("4lw mntr server_state=%s" % mntr.get("zk_server_state"))
    for k in ("zk_version", "zk_avg_latency", "zk_max_latency", "zk_min_latency",
              "zk_packets_received", "zk_packets_sent", "zk_num_alive_connections",
              "zk_outstanding_requests", "zk_znode_count", "zk_watch_count",
              "zk_ephemerals_count", "zk_approximate_data_size",
              "zk_open_file_descriptor_count", "zk_max_file_descriptor_count") + tuple(
                  "zk_" + k for k in MONITOR_KEYS):
        ctx.log("4lw mntr has %s=%s" % (k, k in mntr))
    ctx.log("4lw mntr znode_count delta=%d ephemerals_count delta=%d" % (
        int(mntr["zk_znode_count"]) - int(mntr_before["zk_znode_count"]),
        int(mntr["zk_ephemerals_count"]) - int(mntr_before["zk_ephemerals_count"])))
    ctx.log("4lw mntr znode_count == srvr Node count: %s" % (mntr["zk_znode_count"] == after["Node count"]))
    a.get_data(r, watch=True)
    a.exists(r + "/nx", watch=True)
    a.get_children(r, watch=True)
    out, closed = ctx.four("wchs")
    ctx.log("4lw wchs -> %r" % out)
    out, closed = ctx.four("wchp")
    ctx.log("4lw wchp -> %r" % "".join(
        "\t<sid>\n" if l.startswith("\t0x") else l + "\n" for l in out.splitlines()))
    out, closed = ctx.four("dump")
    ctx.log("4lw dump first line=%r" % (out.splitlines()[0] if out else None))
    for w in (b"abcd", b"kill", b"\xff\xf4\xff\xfd"):
        out, closed = ctx.four(w, timeout=1.5)
        ctx.log("4lw %r -> %r closed=%s" % (w, out, closed))


@scenario
def xdiff_client_create_session(ctx):
    """Opcode -10 (createSession) sent by a client inside an established session."""
    r = ctx.root
    a = setup(ctx)
    c = ctx.conn("C")
    c.send_frame(i32(c.next_xid()) + i32(-10) + i32(30000))
    f = c.read_frame(REPLY_TIMEOUT)
    if f in (EOF, TIMEOUT):
        c.log("createSession(-10) -> %s" % f)
    elif len(f) >= 16 and struct.unpack(">i", f[:4])[0] == 1:
        xid, zxid, err = struct.unpack(">iqi", f[:16])
        c.log("createSession(-10) -> xid=%d zxid=%s err=%d extra=%s" % (
            xid, ctx.norm.z(zxid), err, f[16:].hex()))
    else:
        rd = Reader(f)
        try:
            c.log("createSession(-10) -> ConnectResponse-shaped frame len=%d proto=%d timeout=%d sid=%s" % (
                len(f), rd.i32(), rd.i32(), ctx.norm.s(rd.i64())))
        except Short:
            c.log("createSession(-10) -> frame %s" % f.hex())
    c.expect_closed(timeout=SILENCE_TIMEOUT)
    a.exists(r)


@scenario
def session_expiry(ctx):
    r = ctx.root
    a = setup(ctx, timeout=4000)
    a.create(r + "/eph", flags=1)
    b = ctx.conn("B")
    b.exists(r + "/eph", watch=True)
    b.get_children(r, watch=True)
    sid, pw = a.sid, a.passwd
    # A stays idle; its session expires 4-6 s later and its connection is closed silently
    st = time.monotonic()
    while time.monotonic() - st < 9:
        f = b.read_frame(9 - (time.monotonic() - st))
        if f in (EOF, TIMEOUT):
            b.log("waiting for expiry: %s" % f)
            break
        b.log_event(f)
        if b"/eph" in f:
            break
    b.drain()
    a.expect_closed(timeout=1.0, label="expired session's connection")
    c = ctx.raw_conn("C")
    c.connect(sid=sid, passwd=pw, label="reattach expired session")
    c.expect_closed()
    b.exists(r + "/eph")


@scenario
def watch_acl_filter(ctx):
    """The Debian 3.8.0 package carries the CVE-2024-23944 fix: events need READ."""
    r = ctx.root
    a = setup(ctx)
    b = ctx.conn("B")
    b.add_auth("digest", "u:p")
    sec = [(31, "digest", digest_id("u:p"))]
    a.exists(r + "/s", watch=True)
    a.get_children(r, watch=True)
    b.create(r + "/s", acl=sec)                    # NodeCreated needs READ on /s
    a.drain()
    a.exists(r + "/s", watch=True)
    b.set_data(r + "/s", b"1")
    a.drain()
    a.add_auth("digest", "u:p")
    b.set_data(r + "/s", b"2")                     # the one-shot watch was used up
    a.drain()
    c = ctx.conn("C")
    c.add_watch(r, 1)
    c.add_watch(r + "/s", 0)
    b.create(r + "/s/k", acl=sec)
    b.create(r + "/open")
    b.set_data(r + "/s", b"3")
    b.delete(r + "/s/k")
    b.create(r + "/p")
    b.create(r + "/p/q", acl=sec)
    c.drain()
    d = ctx.conn("D")
    d.get_children(r + "/p", watch=True)
    d.exists(r + "/p/q", watch=True)
    b.delete(r + "/p/q")
    d.drain()
    b.create(r + "/s2", acl=sec)
    rel = b.last_zxid
    b.set_data(r + "/s2", b"x")
    w = ctx.conn("W")
    w.call("setWatches", 101, b_set_watches(rel - 1, data=[r + "/s2"], exist=[r + "/s"],
                                              child=[r + "/s"]), xid=-8)


# ---- intentional differences (keeper follows ZooKeeper 3.9); see EXPECTED_DIFFERENCES

@scenario
def xdiff_check_alone(ctx):
    r = ctx.root
    a = setup(ctx)
    a.create(r + "/a")
    b = ctx.conn("B")
    b.call("check(missing)", 13, b_path_int(r + "/missing", -1), timeout=SILENCE_TIMEOUT)
    b.expect_closed(timeout=SILENCE_TIMEOUT)
    c = ctx.conn("C")
    c.call("check(ok)", 13, b_path_int(r + "/a", -1), timeout=SILENCE_TIMEOUT)
    c.expect_closed(timeout=0.2)
    a.exists(r)


@scenario
def xdiff_delete_container(ctx):
    r = ctx.root
    a = setup(ctx)
    a.create(r + "/p")
    a.create(r + "/c", op=19, flags=4)
    a.call("deleteContainer(p)", 20, ustr(r + "/p"), timeout=SILENCE_TIMEOUT)
    b = ctx.conn("B")
    b.call("deleteContainer(c)", 20, ustr(r + "/c"), timeout=SILENCE_TIMEOUT)
    b.get_children2(r)


@scenario
def xdiff_ipv6_acl(ctx):
    r = ctx.root
    a = setup(ctx)
    a.create(r + "/v6", acl=[(31, "ip", "::1/128")])
    a.create(r + "/v6b", acl=[(31, "ip", "0:0:0:0:0:0:0:1")])
    a.create(r + "/v6c", acl=[(31, "ip", "fe80::/10")])


@scenario
def xdiff_watch_modes(ctx):
    r = ctx.root
    a = setup(ctx)
    b = ctx.conn("B")
    x = r + "/x"
    a.create(x)
    a.add_watch(x, 0)                              # persistent, then a one-shot on the same path
    a.get_data(x, watch=True)
    b.set_data(x, b"1")
    a.drain()
    b.set_data(x, b"2")
    a.drain()                                      # 3.8: the one-shot replaced the persistent watch

# The AdminServer's commands (ZooKeeper 3.8's primary names), and the mntr
# keys keeper serves, which ZooKeeper's monitor command must also carry.
ADMIN_COMMANDS = [
    "configuration", "connection_stat_reset", "connections", "dirs", "dump", "environment",
    "get_trace_mask", "hash", "initial_configuration", "is_read_only", "last_snapshot", "leader",
    "monitor", "observer_connection_stat_reset", "observers", "ruok", "server_stats",
    "set_trace_mask", "stat_reset", "stats", "system_properties", "voting_view", "watch_summary",
    "watches", "watches_by_path", "zabstate",
]
MONITOR_KEYS = [
    "version", "server_state", "ephemerals_count", "num_alive_connections", "avg_latency",
    "outstanding_requests", "znode_count", "global_sessions", "packets_sent", "packets_received",
    "watch_count", "auth_failed_count", "min_latency", "max_file_descriptor_count",
    "approximate_data_size", "open_file_descriptor_count", "local_sessions", "uptime",
    "max_latency", "bytes_received_count", "non_mtls_remote_conn_count", "non_mtls_local_conn_count",
    "last_client_response_size", "min_client_response_size", "max_client_response_size",
    "connection_drop_probability", "outstanding_tls_handshake", "response_bytes",
    "connection_request_count", "connection_rejected", "commit_count", "proposal_count",
    "looking_count", "snap_count", "avg_readlatency", "min_readlatency", "max_readlatency",
    "cnt_readlatency", "sum_readlatency", "p50_readlatency", "p95_readlatency", "p99_readlatency",
    "p999_readlatency", "avg_updatelatency", "p99_updatelatency", "avg_fsynctime", "cnt_fsynctime",
    "avg_sync_processor_batch_size", "max_sync_processor_batch_size",
]


def json_shape(v):
    """A JSON value's shape: objects by sorted key (a key that is a session id or a
    path, as in watches and dump, by what it is), a list by its first element,
    scalars by type."""
    if isinstance(v, dict):
        def key(k):
            return "<id>" if k.isdigit() else "<path>" if k.startswith("/") else k
        # (ZooKeeper keeps emptied expiry buckets in dump: an id's empty list is left out.)
        entries = [k for k in v if not (k.isdigit() and v[k] == [])]
        return "{" + ", ".join(sorted(set("%s: %s" % (key(k), json_shape(v[k])) for k in entries))) + "}"
    if isinstance(v, list):
        return "[" + (json_shape(v[0]) if v else "") + "]"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "num"
    return "null" if v is None else "str"


@scenario
def admin_server(ctx):
    """Every AdminServer command: its status, envelope and shape; values only where stable."""
    r = ctx.root
    a = setup(ctx)
    a.create(r + "/w")
    a.get_data(r + "/w", watch=True)
    a.create(r + "/e", flags=1)
    status, text = ctx.admin("")
    ctx.log("admin list status=%s links=%s" % (status, sorted(
        l.split('">')[1].split("<")[0] for l in text.splitlines() if l.startswith("<a href="))))
    for name in ADMIN_COMMANDS:
        status, body = ctx.admin(name + ("?traceMask=306" if name == "set_trace_mask" else ""))
        ctx.log("admin %s status=%s command=%r error=%r" % (name, status, body.get("command"), body.get("error")))
        fields = {k: v for k, v in body.items() if k not in ("command", "error")}
        if name == "monitor":
            for k in MONITOR_KEYS:
                ctx.log("admin monitor %s: %s" % (k, json_shape(fields.get(k))))
        elif name in ("environment", "system_properties"):
            # Java's facts differ (keeper has no JVM): one both carry.
            key = "zookeeper.version" if name == "environment" else "os.name"
            ctx.log("admin %s %s: %s" % (name, key, json_shape(fields.get(key))))
        elif name == "hash":
            # ZooKeeper lists its digest history (empty by default); keeper its tree's digest now.
            ctx.log("admin hash digests is a list: %s" % isinstance(fields.get("digests"), list))
        elif name == "initial_configuration":
            ctx.log("admin %s has clientPort: %s" % (name, "clientPort=" in fields.get(name, "")))
        elif name in ("leader", "zabstate", "voting_view", "observers", "is_read_only", "get_trace_mask", "set_trace_mask"):
            ctx.log("admin %s -> %s" % (name, json.dumps(fields, sort_keys=True)))
        else:
            ctx.log("admin %s shape %s" % (name, json_shape(fields)))
    for alias in ("mntr", "conf", "srvr", "wchc", "lead", "crst"):
        status, body = ctx.admin(alias)
        ctx.log("admin alias %s status=%s command=%r" % (alias, status, body.get("command")))
    status, body = ctx.admin("nope")
    ctx.log("admin nope status=%s -> %s" % (status, json.dumps(body, sort_keys=True)))
    status, body = ctx.admin("set_trace_mask?traceMask=x")
    ctx.log("admin stmk bad mask status=%s -> %s" % (status, json.dumps(body, sort_keys=True)))



EXPECTED_DIFFERENCES = {
    'xdiff_check_alone': {
        "reason": (
            'check (opcode 13) sent alone. ZooKeeper 3.8 runs it through the write pipeline (it uses '
            'a zxid): a failing check gets its error reply, a successful one gets no reply at all '
            '(the null body fails to serialize) and the connection stays open. keeper answers '
            'Unimplemented (-6, zxid -1) and closes the connection, as ZooKeeper 3.9 does '
            '(ZOOKEEPER-2623).'
        ),
        'zookeeper': [
            'A connect -> len=37 proto=0 timeout=30000 sid=S1 passwd=16B readOnly=00',
            "A create('/diff-xdiff_check_alone',f=0) -> xid=1 zxid=Z+0 err=0 path='/diff-xdiff_check_alone'",
            "A create('/diff-xdiff_check_alone/a',f=0) -> xid=2 zxid=Z+1 err=0 path='/diff-xdiff_check_alone/a'",
            'B connect -> len=37 proto=0 timeout=30000 sid=S2 passwd=16B readOnly=00',
            'B check(missing) -> xid=1 zxid=Z+3 err=-101',
            'B after: still open (silent 1.0s)',
            'C connect -> len=37 proto=0 timeout=30000 sid=S3 passwd=16B readOnly=00',
            'C check(ok) -> NO REPLY',
            'C after: still open (silent 0.2s)',
            "A exists('/diff-xdiff_check_alone') -> xid=3 zxid=Z+5 err=0 stat={cz=Z+0 mz=Z+0 ct=T mt=T v=0 cv=1 av=0 eo=0 dl=0 nc=1 pz=Z+1}",
        ],
        'keeper': [
            'A connect -> len=37 proto=0 timeout=30000 sid=S1 passwd=16B readOnly=00',
            "A create('/diff-xdiff_check_alone',f=0) -> xid=1 zxid=Z+0 err=0 path='/diff-xdiff_check_alone'",
            "A create('/diff-xdiff_check_alone/a',f=0) -> xid=2 zxid=Z+1 err=0 path='/diff-xdiff_check_alone/a'",
            'B connect -> len=37 proto=0 timeout=30000 sid=S2 passwd=16B readOnly=00',
            'B check(missing) -> xid=1 zxid=-1 err=-6',
            'B after: closed by server',
            'C connect -> len=37 proto=0 timeout=30000 sid=S3 passwd=16B readOnly=00',
            'C check(ok) -> xid=1 zxid=-1 err=-6',
            'C after: closed by server',
            "A exists('/diff-xdiff_check_alone') -> xid=3 zxid=Z+3 err=0 stat={cz=Z+0 mz=Z+0 ct=T mt=T v=0 cv=1 av=0 eo=0 dl=0 nc=1 pz=Z+1}",
        ],
    },
    'xdiff_delete_container': {
        "reason": (
            'deleteContainer (opcode 20) sent by a client. ZooKeeper 3.8 takes the path from the raw '
            'request buffer (length prefix included), so it is never a valid path: BadArguments (-8),'
            ' a zxid used. keeper decodes the path as ZooKeeper 3.9 does and deletes the empty node.'
        ),
        'zookeeper': [
            'A connect -> len=37 proto=0 timeout=30000 sid=S1 passwd=16B readOnly=00',
            "A create('/diff-xdiff_delete_container',f=0) -> xid=1 zxid=Z+0 err=0 path='/diff-xdiff_delete_container'",
            "A create('/diff-xdiff_delete_container/p',f=0) -> xid=2 zxid=Z+1 err=0 path='/diff-xdiff_delete_container/p'",
            "A createContainer('/diff-xdiff_delete_container/c',f=4) -> xid=3 zxid=Z+2 err=0 path='/diff-xdiff_delete_container/c' stat={cz=Z+2 mz=Z+2 ct=T mt=T v=0 cv=0 av=0 eo=0 dl=0 nc=0 pz=Z+2}",
            'A deleteContainer(p) -> xid=4 zxid=Z+3 err=-8',
            'B connect -> len=37 proto=0 timeout=30000 sid=S2 passwd=16B readOnly=00',
            'B deleteContainer(c) -> xid=1 zxid=Z+5 err=-8',
            "B getChildren2('/diff-xdiff_delete_container') -> xid=2 zxid=Z+5 err=0 children=['c', 'p'] stat={cz=Z+0 mz=Z+0 ct=T mt=T v=0 cv=2 av=0 eo=0 dl=0 nc=2 pz=Z+2}",
        ],
        'keeper': [
            'A connect -> len=37 proto=0 timeout=30000 sid=S1 passwd=16B readOnly=00',
            "A create('/diff-xdiff_delete_container',f=0) -> xid=1 zxid=Z+0 err=0 path='/diff-xdiff_delete_container'",
            "A create('/diff-xdiff_delete_container/p',f=0) -> xid=2 zxid=Z+1 err=0 path='/diff-xdiff_delete_container/p'",
            "A createContainer('/diff-xdiff_delete_container/c',f=4) -> xid=3 zxid=Z+2 err=0 path='/diff-xdiff_delete_container/c' stat={cz=Z+2 mz=Z+2 ct=T mt=T v=0 cv=0 av=0 eo=0 dl=0 nc=0 pz=Z+2}",
            'A deleteContainer(p) -> xid=4 zxid=Z+3 err=0',
            'B connect -> len=37 proto=0 timeout=30000 sid=S2 passwd=16B readOnly=00',
            'B deleteContainer(c) -> xid=1 zxid=Z+5 err=0',
            "B getChildren2('/diff-xdiff_delete_container') -> xid=2 zxid=Z+5 err=0 children=[] stat={cz=Z+0 mz=Z+0 ct=T mt=T v=0 cv=4 av=0 eo=0 dl=0 nc=0 pz=Z+5}",
        ],
    },
    'xdiff_ipv6_acl': {
        "reason": (
            'ip ACLs with IPv6 addresses: ZooKeeper 3.8 rejects them as InvalidACL (-114); keeper '
            'accepts IPv6 with CIDR masks, as ZooKeeper 3.9 does.'
        ),
        'zookeeper': [
            'A connect -> len=37 proto=0 timeout=30000 sid=S1 passwd=16B readOnly=00',
            "A create('/diff-xdiff_ipv6_acl',f=0) -> xid=1 zxid=Z+0 err=0 path='/diff-xdiff_ipv6_acl'",
            "A create('/diff-xdiff_ipv6_acl/v6',f=0) -> xid=2 zxid=Z+1 err=-114",
            "A create('/diff-xdiff_ipv6_acl/v6b',f=0) -> xid=3 zxid=Z+2 err=-114",
            "A create('/diff-xdiff_ipv6_acl/v6c',f=0) -> xid=4 zxid=Z+3 err=-114",
        ],
        'keeper': [
            'A connect -> len=37 proto=0 timeout=30000 sid=S1 passwd=16B readOnly=00',
            "A create('/diff-xdiff_ipv6_acl',f=0) -> xid=1 zxid=Z+0 err=0 path='/diff-xdiff_ipv6_acl'",
            "A create('/diff-xdiff_ipv6_acl/v6',f=0) -> xid=2 zxid=Z+1 err=0 path='/diff-xdiff_ipv6_acl/v6'",
            "A create('/diff-xdiff_ipv6_acl/v6b',f=0) -> xid=3 zxid=Z+2 err=0 path='/diff-xdiff_ipv6_acl/v6b'",
            "A create('/diff-xdiff_ipv6_acl/v6c',f=0) -> xid=4 zxid=Z+3 err=0 path='/diff-xdiff_ipv6_acl/v6c'",
        ],
    },
    'xdiff_watch_modes': {
        "reason": (
            'several watch modes on one path of one connection: in ZooKeeper 3.8 the newest '
            'registration replaces the older one (a one-shot getData watch set after addWatch '
            'PERSISTENT turns it into a one-shot watch); keeper keeps both modes, as ZooKeeper 3.9 '
            'does, so the persistent watch still fires on the second change.'
        ),
        'zookeeper': [
            'A connect -> len=37 proto=0 timeout=30000 sid=S1 passwd=16B readOnly=00',
            "A create('/diff-xdiff_watch_modes',f=0) -> xid=1 zxid=Z+0 err=0 path='/diff-xdiff_watch_modes'",
            'B connect -> len=37 proto=0 timeout=30000 sid=S2 passwd=16B readOnly=00',
            "A create('/diff-xdiff_watch_modes/x',f=0) -> xid=2 zxid=Z+2 err=0 path='/diff-xdiff_watch_modes/x'",
            "A addWatch('/diff-xdiff_watch_modes/x',mode=0) -> xid=3 zxid=Z+2 err=0 errbody=0",
            "A getData('/diff-xdiff_watch_modes/x',w) -> xid=4 zxid=Z+2 err=0 data=b'' stat={cz=Z+2 mz=Z+2 ct=T mt=T v=0 cv=0 av=0 eo=0 dl=0 nc=0 pz=Z+2}",
            "B setData('/diff-xdiff_watch_modes/x',b'1',v=-1) -> xid=1 zxid=Z+3 err=0 stat={cz=Z+2 mz=Z+3 ct=T mt=T v=1 cv=0 av=0 eo=0 dl=1 nc=0 pz=Z+2}",
            "A EVENT xid=-1 zxid=-1 err=0 NodeDataChanged state=3 path='/diff-xdiff_watch_modes/x'",
            'A ping -> xid=-2 zxid=Z+3 err=0',
            "B setData('/diff-xdiff_watch_modes/x',b'2',v=-1) -> xid=2 zxid=Z+4 err=0 stat={cz=Z+2 mz=Z+4 ct=T mt=T v=2 cv=0 av=0 eo=0 dl=1 nc=0 pz=Z+2}",
            'A ping -> xid=-2 zxid=Z+4 err=0',
        ],
        'keeper': [
            'A connect -> len=37 proto=0 timeout=30000 sid=S1 passwd=16B readOnly=00',
            "A create('/diff-xdiff_watch_modes',f=0) -> xid=1 zxid=Z+0 err=0 path='/diff-xdiff_watch_modes'",
            'B connect -> len=37 proto=0 timeout=30000 sid=S2 passwd=16B readOnly=00',
            "A create('/diff-xdiff_watch_modes/x',f=0) -> xid=2 zxid=Z+2 err=0 path='/diff-xdiff_watch_modes/x'",
            "A addWatch('/diff-xdiff_watch_modes/x',mode=0) -> xid=3 zxid=Z+2 err=0 errbody=0",
            "A getData('/diff-xdiff_watch_modes/x',w) -> xid=4 zxid=Z+2 err=0 data=b'' stat={cz=Z+2 mz=Z+2 ct=T mt=T v=0 cv=0 av=0 eo=0 dl=0 nc=0 pz=Z+2}",
            "B setData('/diff-xdiff_watch_modes/x',b'1',v=-1) -> xid=1 zxid=Z+3 err=0 stat={cz=Z+2 mz=Z+3 ct=T mt=T v=1 cv=0 av=0 eo=0 dl=1 nc=0 pz=Z+2}",
            "A EVENT xid=-1 zxid=-1 err=0 NodeDataChanged state=3 path='/diff-xdiff_watch_modes/x'",
            'A ping -> xid=-2 zxid=Z+3 err=0',
            "B setData('/diff-xdiff_watch_modes/x',b'2',v=-1) -> xid=2 zxid=Z+4 err=0 stat={cz=Z+2 mz=Z+4 ct=T mt=T v=2 cv=0 av=0 eo=0 dl=1 nc=0 pz=Z+2}",
            "A EVENT xid=-1 zxid=-1 err=0 NodeDataChanged state=3 path='/diff-xdiff_watch_modes/x'",
            'A ping -> xid=-2 zxid=Z+4 err=0',
        ],
    },
    'xdiff_client_create_session': {
        "reason": (
            'createSession (opcode -10) sent by a client on an established session. ZooKeeper (3.8 '
            'and 3.9: Request.isValid accepts -10) runs it as a session creation: it uses a zxid and '
            'writes a second ConnectResponse (no reply header) into the reply stream, which no client'
            ' can parse. keeper treats the internal opcode as unknown: Unimplemented (-6, zxid -1) '
            'and close. Deliberately not emulated (no client sends it; it only corrupts the stream).'
        ),
        'zookeeper': [
            'A connect -> len=37 proto=0 timeout=30000 sid=S1 passwd=16B readOnly=00',
            "A create('/diff-xdiff_client_create_session',f=0) -> xid=1 zxid=Z+0 err=0 path='/diff-xdiff_client_create_session'",
            'C connect -> len=37 proto=0 timeout=30000 sid=S2 passwd=16B readOnly=00',
            'C createSession(-10) -> ConnectResponse-shaped frame len=37 proto=0 timeout=30000 sid=S2',
            'C after: still open (silent 1.0s)',
            "A exists('/diff-xdiff_client_create_session') -> xid=2 zxid=Z+2 err=0 stat={cz=Z+0 mz=Z+0 ct=T mt=T v=0 cv=0 av=0 eo=0 dl=0 nc=0 pz=Z+0}",
        ],
        'keeper': [
            'A connect -> len=37 proto=0 timeout=30000 sid=S1 passwd=16B readOnly=00',
            "A create('/diff-xdiff_client_create_session',f=0) -> xid=1 zxid=Z+0 err=0 path='/diff-xdiff_client_create_session'",
            'C connect -> len=37 proto=0 timeout=30000 sid=S2 passwd=16B readOnly=00',
            'C createSession(-10) -> xid=1 zxid=-1 err=-6 extra=',
            'C after: closed by server',
            "A exists('/diff-xdiff_client_create_session') -> xid=2 zxid=Z+1 err=0 stat={cz=Z+0 mz=Z+0 ct=T mt=T v=0 cv=0 av=0 eo=0 dl=0 nc=0 pz=Z+0}",
        ],
    },
}


# --------------------------------------------------------------------------------------
# Servers

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def four_letter(port, word, timeout=1.0):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return ""
    try:
        s.sendall(word.encode())
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        return out.decode(errors="replace")
    except OSError:
        return ""
    finally:
        s.close()


class Server:
    kind = None

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, self.kind)
        os.makedirs(os.path.join(self.dir, "data"))
        self.port = free_port()
        self.admin_port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.dir, "server.log")
        self.cfg = os.path.join(self.dir, "zoo.cfg")

    def base_cfg(self):
        return ("tickTime=2000\n"
                "dataDir=%s\n"
                "clientPort=%d\n"
                "clientPortAddress=127.0.0.1\n"
                "4lw.commands.whitelist=*\n"
                "admin.enableServer=true\n"
                "admin.serverAddress=127.0.0.1\n"
                "admin.serverPort=%d\n"
                "enforceQuota=true\n"
                "extendedTypesEnabled=true\n" % (os.path.join(self.dir, "data"), self.port, self.admin_port))

    def launch(self, argv):
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir, start_new_session=True)

    def wait_serving(self, limit=40.0):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s; log: %s" % (self.kind, self.proc.returncode,
                                                                    self.tail_log()))
            if "Mode:" in four_letter(self.port, "srvr"):
                return
            time.sleep(0.1)
        raise RuntimeError("%s not serving within %.0f s; log: %s" % (self.kind, limit, self.tail_log()))

    def tail_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)


class ZooKeeper(Server):
    kind = "zookeeper"

    def start(self):
        with open(self.cfg, "w") as f:
            f.write(self.base_cfg())
        self.launch(["java", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                     "-cp", ZK_CLASSPATH,
                     "-Dzookeeper.log.dir=" + self.dir,
                     "-Dzookeeper.root.logger=INFO,CONSOLE",
                     "-Dzookeeper.extendedTypesEnabled=true",
                     "-Dzookeeper.DigestAuthenticationProvider.superDigest=" + SUPER_DIGEST,
                     "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.cfg])


class Keeper(Server):
    kind = "keeper"

    def __init__(self, workdir, binary):
        super().__init__(workdir)
        self.binary = binary

    def start(self):
        with open(self.cfg, "w") as f:
            f.write(self.base_cfg())
            f.write("DigestAuthenticationProvider.superDigest=%s\n" % SUPER_DIGEST)
        self.launch([self.binary, "serve", "--config", self.cfg])


# --------------------------------------------------------------------------------------
# Runner

def run_side(server, fn):
    ctx = Ctx(server, fn.__name__)
    err = None
    try:
        fn(ctx)
    except Exception:
        err = traceback.format_exc()
        ctx.log("HARNESS EXCEPTION: " + err.strip().splitlines()[-1])
    finally:
        ctx.close_all()
    return ctx.lines, err


def run_scenario(fn, servers):
    results = {}

    def worker(s):
        results[s.kind] = run_side(s, fn)

    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keeper", help="path to the keeper binary (required unless --list)")
    ap.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    ap.add_argument("--verbose", action="store_true", help="print every normalised line")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (server logs)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--dump", metavar="DIR", help="write each side's normalised lines to DIR")
    args = ap.parse_args()

    if args.list:
        for fn in SCENARIOS:
            print(fn.__name__)
        return 0
    chosen = SCENARIOS
    if args.scenario:
        names = {fn.__name__: fn for fn in SCENARIOS}
        unknown = [n for n in args.scenario if n not in names]
        if unknown:
            print("unknown scenario(s): %s" % ", ".join(unknown), file=sys.stderr)
            return 2
        chosen = [names[n] for n in args.scenario]
    if not args.keeper:
        ap.error("--keeper is required")
    binary = os.path.abspath(args.keeper)
    if not os.access(binary, os.X_OK):
        print("keeper binary not executable: %s" % binary, file=sys.stderr)
        return 2

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    t0 = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="keeper-differential-")
    servers = []
    failed = []
    try:
        zk = ZooKeeper(workdir)
        servers.append(zk)
        zk.start()
        kp = Keeper(workdir, binary)
        servers.append(kp)
        kp.start()
        zk.wait_serving()
        kp.wait_serving()
        print("servers up in %.1fs (zookeeper :%d, keeper :%d)" % (time.monotonic() - t0, zk.port, kp.port))
        for fn in chosen:
            name = fn.__name__
            st = time.monotonic()
            res = run_scenario(fn, [zk, kp])
            (zl, zerr), (kl, kerr) = res["zookeeper"], res["keeper"]
            if args.dump:
                os.makedirs(args.dump, exist_ok=True)
                for kind, lines in (("zookeeper", zl), ("keeper", kl)):
                    with open(os.path.join(args.dump, "%s.%s.txt" % (name, kind)), "w") as f:
                        f.write("\n".join(lines) + "\n")
            exp = EXPECTED_DIFFERENCES.get(name)
            if exp is not None and exp.get("zookeeper") is not None:
                ok = zl == exp["zookeeper"] and kl == exp["keeper"] and not zerr and not kerr
                diffs = [("zookeeper (documented)", "zookeeper (observed)", exp["zookeeper"], zl),
                         ("keeper (documented)", "keeper (observed)", exp["keeper"], kl)]
            else:
                ok = zl == kl and not zerr and not kerr
                diffs = [("zookeeper", "keeper", zl, kl)]
            status = "PASS" if ok else "FAIL"
            extra = " (documented difference)" if exp else ""
            dead = [s for s in servers if s.proc.poll() is not None]
            if dead:
                ok, status = False, "FAIL"
            print("%s %s%s [%.1fs]" % (status, name, extra, time.monotonic() - st))
            if exp and (args.verbose or not ok):
                print("    reason: " + exp["reason"])
            if not ok:
                failed.append(name)
                for a_name, b_name, a_lines, b_lines in diffs:
                    for line in difflib.unified_diff(a_lines, b_lines, a_name, b_name, lineterm="", n=2):
                        print("    " + line)
                for side, e in (("zookeeper", zerr), ("keeper", kerr)):
                    if e:
                        print("    harness exception on %s side:\n%s" % (side, e))
            if dead:
                for s in dead:
                    print("    %s EXITED (status %s) during %s; log tail:\n%s" % (
                        s.kind, s.proc.returncode, name, s.tail_log()))
                failed.extend(f.__name__ for f in chosen[chosen.index(fn) + 1:])
                print("    remaining scenarios not run")
                break
            if args.verbose:
                print("    --- zookeeper lines:")
                for line in zl:
                    print("      " + line)
                if kl != zl:
                    print("    --- keeper lines:")
                    for line in kl:
                        print("      " + line)
    finally:
        # no interruption while the servers are stopped
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for s in reversed(servers):
            try:
                s.stop()
            except Exception as e:  # keep stopping the others
                print("could not stop %s: %s" % (s.kind, e), file=sys.stderr)
        if args.keep:
            print("temp dir kept: %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("%d/%d scenarios passed in %.1fs%s" % (len(chosen) - len(failed), len(chosen),
                                                  time.monotonic() - t0,
                                                  (": failed " + ", ".join(failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
