//! A blocking, raw-protocol ZooKeeper client for tests that need to see or
//! send exact frames: the differential harness and the robustness tests.
//! Requests are encoded here by hand (jute), independently of the server's
//! decoder; replies are rendered as normalised text for comparison.

use bytes::{Bytes, BytesMut};
use keeper::proto::jute::{JuteReader, JuteWriter};
use keeper::proto::records::{ReplyHeader, Stat};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a test waits for one frame.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection speaking the raw protocol.
pub struct RawClient {
    pub stream: TcpStream,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    next_xid: i32,
}

/// A frame from the server, split into header and body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub header: ReplyHeader,
    pub body: Bytes,
}

/// Encodes a frame: length, then whatever `f` writes.
pub fn frame(f: impl FnOnce(&mut JuteWriter<'_>)) -> Vec<u8> {
    let mut body = BytesMut::new();
    f(&mut JuteWriter::new(&mut body));
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// The bytes of a ConnectRequest frame.
pub fn connect_frame(session_id: i64, passwd: &[u8], timeout_ms: i32, last_zxid: i64, read_only_byte: bool) -> Vec<u8> {
    frame(|w| {
        w.int(0).long(last_zxid).int(timeout_ms).long(session_id).buffer(Some(passwd));
        if read_only_byte {
            w.boolean(false);
        }
    })
}

impl RawClient {
    /// Connects and opens a new session.
    pub fn connect(addr: SocketAddr) -> RawClient {
        RawClient::attach(addr, 0, &[0; 16], 30_000).expect("handshake succeeds")
    }

    /// Connects with a session id and password (0 for a new session); `None`
    /// if the server does not listen, answered with the all-zero rejection, or closed.
    pub fn attach(addr: SocketAddr, session_id: i64, passwd: &[u8], timeout_ms: i32) -> Option<RawClient> {
        let mut stream = TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.write_all(&connect_frame(session_id, passwd, timeout_ms, 0, true)).ok()?;
        let body = read_frame(&mut stream)?;
        let mut r = JuteReader::new(body);
        let _proto = r.int().unwrap();
        let timeout_ms = r.int().unwrap();
        let session_id = r.long().unwrap();
        let passwd = r.buffer().unwrap().unwrap_or_default().to_vec();
        if session_id == 0 {
            return None;
        }
        Some(RawClient { stream, session_id, passwd, timeout_ms, next_xid: 1 })
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends a request with the next xid; returns the xid.
    pub fn send(&mut self, op: i32, body: impl FnOnce(&mut JuteWriter<'_>)) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.send_xid(xid, op, body);
        xid
    }

    /// Sends a request with a chosen xid.
    pub fn send_xid(&mut self, xid: i32, op: i32, body: impl FnOnce(&mut JuteWriter<'_>)) {
        let bytes = frame(|w| {
            w.int(xid).int(op);
            body(w);
        });
        self.stream.write_all(&bytes).expect("send");
    }

    /// Reads the next frame (reply or notification); `None` on EOF or timeout.
    pub fn read(&mut self) -> Option<Reply> {
        let body = read_frame(&mut self.stream)?;
        let mut r = JuteReader::new(body.clone());
        let header = ReplyHeader::read(&mut r).ok()?;
        Some(Reply { header, body: body.slice(16..) })
    }

    /// Sends a request and reads frames until its reply; notifications seen on
    /// the way are returned too, in order.
    pub fn call(&mut self, op: i32, body: impl FnOnce(&mut JuteWriter<'_>)) -> (Reply, Vec<Reply>) {
        let xid = self.send(op, body);
        let mut notes = Vec::new();
        loop {
            let reply = self.read().unwrap_or_else(|| panic!("no reply to xid {xid} (op {op})"));
            if reply.header.xid == xid || (op == 11 && reply.header.xid == -2) {
                return (reply, notes);
            }
            notes.push(reply);
        }
    }

    /// Connects and opens a session with `timeout_ms`, or `None` if the
    /// server does not answer (down, or not serving).
    pub fn try_connect(addr: SocketAddr, timeout_ms: i32) -> Option<RawClient> {
        RawClient::attach(addr, 0, &[0; 16], timeout_ms)
    }

    /// Creates a node (`flags`: 0 persistent, 1 ephemeral) open to all;
    /// the reply's error code, or `None` with no reply.
    pub fn create(&mut self, path: &str, data: &[u8], flags: i32) -> Option<i32> {
        let xid = self.send(1, |w| {
            w.ustring(path).buffer(Some(data)).count(1).int(31).ustring("world").ustring("anyone").int(flags);
        });
        loop {
            let reply = self.read()?;
            if reply.header.xid == xid {
                return Some(reply.header.err);
            }
        }
    }

    /// A node's data, or `None` if it does not exist.
    pub fn get(&mut self, path: &str) -> Option<Vec<u8>> {
        let (reply, _) = self.call(4, |w| {
            w.ustring(path).boolean(false);
        });
        if reply.header.err != 0 {
            return None;
        }
        let mut r = JuteReader::new(reply.body);
        Some(r.buffer().unwrap().map(|d| d.to_vec()).unwrap_or_default())
    }

    /// A node's children (empty if it does not exist).
    pub fn children(&mut self, path: &str) -> Vec<String> {
        let (reply, _) = self.call(8, |w| {
            w.ustring(path).boolean(false);
        });
        if reply.header.err != 0 {
            return Vec::new();
        }
        JuteReader::new(reply.body).strings().unwrap()
    }

    /// sync: this server has applied everything committed when it returns.
    pub fn sync(&mut self, path: &str) {
        let (reply, _) = self.call(9, |w| {
            w.ustring(path);
        });
        assert_eq!(reply.header.err, 0, "sync {path}");
    }

    /// Whether the server closed the connection (EOF within the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.stream.read(&mut buf), Ok(0))
    }
}

/// Reads one length-prefixed frame; `None` on EOF, timeout or a short read.
pub fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let len = i32::from_be_bytes(len);
    if !(0..=64 << 20).contains(&len) {
        return None;
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}

/// Renders a Stat with times and session ids replaced by the normaliser.
pub fn stat_text(stat: &Stat, norm: &mut impl FnMut(&str, i64) -> String) -> String {
    format!(
        "Stat(czxid={} mzxid={} pzxid={} ctime={} mtime={} version={} cversion={} aversion={} owner={} len={} children={})",
        norm("zxid", stat.czxid),
        norm("zxid", stat.mzxid),
        norm("zxid", stat.pzxid),
        norm("time", stat.ctime),
        norm("time", stat.mtime),
        stat.version,
        stat.cversion,
        stat.aversion,
        norm("session", stat.ephemeral_owner),
        stat.data_length,
        stat.num_children
    )
}
