//! A simulated client: one session, spoken to a server's shard in the real
//! wire protocol (jute frames in, jute frames out), with several requests
//! in flight at once (pipelining) and watches on the keys it reads.
//!
//! The world hands each request frame to the shard the client is connected
//! to, exactly as a connection's reader does, and gives the client
//! whatever the shard wrote for it; [`Client::take_replies`] decodes it.

use crate::core::tree::open_acl;
use crate::proto::codes::{OpCode, xid};
use crate::proto::encode;
use crate::proto::frame::{self, FrameCheck};
use crate::proto::jute::JuteReader;
use crate::proto::records::ReplyHeader;
use crate::proto::request::{CreateRequest, Request};
use crate::runtime::shard::Conn;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::rc::Rc;

/// What a client asked, in the order it asked (replies come in this order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// A create or setData of `path`.
    Write {
        xid: i32,
        path: String,
    },
    /// A getData of a shared key, setting a watch or not.
    Read {
        xid: i32,
        key: String,
        watch: bool,
    },
    Sync {
        xid: i32,
    },
    Ping,
    Close {
        xid: i32,
    },
}

impl Sent {
    fn xid(&self) -> i32 {
        match self {
            Sent::Write { xid, .. } | Sent::Read { xid, .. } | Sent::Sync { xid } | Sent::Close { xid } => *xid,
            Sent::Ping => xid::PING,
        }
    }
}

/// What a client made of a frame from its server.
#[derive(Debug)]
pub enum Reply {
    /// The handshake's answer: a session, or `None` (it expired).
    Connected(Option<i64>),
    /// A watch fired on `path`.
    Event { path: String },
    /// The answer to `sent`, the oldest request in flight, with the zxid
    /// its header carries, its error, and (a getData) the node's data.
    Answer { sent: Sent, zxid: i64, err: i32, data: Option<Bytes> },
}

/// One client and its connection.
pub struct Client {
    pub id: u64,
    /// The server it talks to, and its connection there: the shard and the
    /// shard's handle (None: not connected).
    pub server: u64,
    pub conn: Option<(usize, Rc<Conn>)>,
    /// Waiting for the handshake's answer.
    pub connecting: bool,
    pub session: Option<i64>,
    passwd: Bytes,
    /// Requests sent and not answered, oldest first.
    pub in_flight: VecDeque<Sent>,
    /// Frames written while the server's process was paused: its socket
    /// buffers them until it runs again.
    pub unsent: VecDeque<Bytes>,
    /// Bytes received and not yet decoded.
    input: BytesMut,
    next_xid: i32,
    /// Writes sent so far (each writes a value no other write has).
    pub writes: u64,
    /// When it last sent anything (it pings when idle).
    pub last_sent: i64,
    /// When it last heard from its server, or started connecting.
    pub since: i64,
    /// When the client last found itself without a session: a session it
    /// asks for cannot have been created before (the leader starts its
    /// timer when it prepares the createSession).
    pub no_session_since: i64,
    /// It sent closeSession: it sends nothing more on this session.
    pub closing: bool,
}

/// The session timeout clients ask for (ms).
pub const SESSION_TIMEOUT_MS: i32 = 6000;

impl Client {
    /// A client with no connection yet, that will first try `server`.
    pub fn new(id: u64, server: u64) -> Client {
        Client {
            id,
            server,
            conn: None,
            connecting: false,
            session: None,
            passwd: Bytes::new(),
            in_flight: VecDeque::new(),
            unsent: VecDeque::new(),
            input: BytesMut::new(),
            next_xid: 0,
            writes: 0,
            last_sent: 0,
            since: 0,
            no_session_since: 0,
            closing: false,
        }
    }

    /// The session ended (expired, or closed by the client).
    pub fn lost_session(&mut self, now: i64) {
        self.session = None;
        self.passwd = Bytes::new();
        self.no_session_since = now;
        self.closing = false;
    }

    /// The connection is gone: requests in flight have no answer to come.
    pub fn disconnected(&mut self) {
        self.conn = None;
        self.connecting = false;
        self.in_flight.clear();
        self.unsent.clear();
        self.input.clear();
    }

    /// Whether the client is connected with a session and may send requests.
    pub fn ready(&self) -> bool {
        self.conn.is_some() && !self.connecting && self.session.is_some() && !self.closing
    }

    /// The handshake's frame body: its session (if any) and the newest zxid it has seen.
    pub fn connect_frame(&mut self, last_zxid_seen: i64, now: i64) -> Bytes {
        self.connecting = true;
        self.since = now;
        self.last_sent = now;
        let mut out = BytesMut::new();
        encode::connect(&mut out, last_zxid_seen, self.session.unwrap_or(0), &self.passwd, SESSION_TIMEOUT_MS);
        out.split_off(4).freeze()
    }

    /// A request's frame body, noted as in flight.
    pub fn request(&mut self, op: OpCode, req: &Request, sent: impl FnOnce(i32) -> Sent, now: i64) -> Bytes {
        let xid = if op == OpCode::Ping {
            xid::PING
        } else {
            self.next_xid += 1;
            self.next_xid
        };
        let sent = sent(xid);
        debug_assert_eq!(sent.xid(), xid);
        if self.in_flight.is_empty() {
            self.since = now;
        }
        self.in_flight.push_back(sent);
        self.last_sent = now;
        let mut out = BytesMut::new();
        encode::request(&mut out, xid, op, req);
        out.split_off(4).freeze()
    }

    /// A create of `path` (persistent, or ephemeral with `flags` 1) or a
    /// setData of it, with `data`.
    pub fn write(&mut self, path: &str, create: Option<i32>, data: Bytes, now: i64) -> Bytes {
        let (op, req) = match create {
            Some(flags) => (OpCode::Create, Request::Create(CreateRequest { path: path.into(), data: Some(data), acl: open_acl(), flags, ttl: 0 })),
            None => (OpCode::SetData, Request::SetData { path: path.into(), data: Some(data), version: -1 }),
        };
        self.writes += 1;
        self.request(op, &req, |xid| Sent::Write { xid, path: path.into() }, now)
    }

    /// Takes what the server wrote to this client and decodes every whole frame.
    pub fn take_replies(&mut self, now: i64) -> Result<Vec<Reply>, String> {
        let Some((_, conn)) = &self.conn else { return Ok(Vec::new()) };
        let received = std::mem::take(&mut conn.inner.borrow_mut().out);
        self.input.extend_from_slice(&received);
        let mut replies = Vec::new();
        while let FrameCheck::Ready(len) = frame::check(&self.input, usize::MAX >> 1) {
            let body = frame::take(&mut self.input, len);
            self.since = now;
            replies.push(self.decode(body).map_err(|e| format!("client {}: {e}", self.id))?);
        }
        Ok(replies)
    }

    fn decode(&mut self, body: Bytes) -> Result<Reply, String> {
        if self.connecting {
            self.connecting = false;
            let (timeout, session, passwd) = encode::connect_response(body).map_err(|e| format!("a bad ConnectResponse: {e:?}"))?;
            if timeout <= 0 {
                return Ok(Reply::Connected(None));
            }
            self.session = Some(session);
            self.passwd = passwd;
            return Ok(Reply::Connected(Some(session)));
        }
        let mut r = JuteReader::new(body);
        let header = ReplyHeader::read(&mut r).map_err(|e| format!("a bad reply header: {e:?}"))?;
        if header.xid == xid::NOTIFICATION {
            let (_kind, _state, path) = (r.int(), r.int(), r.ustring().map_err(|e| format!("a bad watch event: {e:?}"))?);
            return Ok(Reply::Event { path });
        }
        let Some(sent) = self.in_flight.pop_front() else { return Err(format!("a reply (xid {}) to no request", header.xid)) };
        if sent.xid() != header.xid {
            return Err(format!("the reply to xid {} came when xid {} was the oldest request in flight: replies out of order", header.xid, sent.xid()));
        }
        let data = match sent {
            Sent::Read { .. } if header.err == 0 => encode::get_data_response(&mut r).map_err(|e| format!("a bad getData reply: {e:?}"))?.0,
            _ => None,
        };
        Ok(Reply::Answer { sent, zxid: header.zxid, err: header.err, data })
    }
}
