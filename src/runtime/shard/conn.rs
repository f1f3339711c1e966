//! One client connection on a shard: its session binding, identities,
//! ordered queue of in-flight requests, output buffer and statistics.
//!
//! Ordering invariant: replies leave in request order. `pending` holds, in
//! arrival order, every request not yet answered; a read is answered at once
//! only when `pending` is empty, otherwise it waits behind the writes before
//! it. Notifications are appended to `out` when the transaction that fires
//! them is applied, so they precede any later reply that reflects the change.

use crate::core::messages::{ConnReport, Latency};
use crate::core::reply::ReplyShape;
use crate::proto::codes::{ErrorCode, OpCode, state};
use crate::proto::frame::ConnectResponse;
use crate::proto::records::Id;
use crate::proto::request::Request;
use crate::proto::response::{Response, write_notification, write_response};
use crate::runtime::notify::Notify;
use crate::runtime::wall_ms;
use bytes::BytesMut;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub use crate::core::tree::watches::ConnId;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing received yet: the first bytes are a ConnectRequest or a four-letter word.
    New,
    /// ConnectRequest sent to the broadcast core; further frames wait.
    Connecting,
    /// A four-letter word (or a Prometheus scrape) is being answered.
    FourLetter(&'static str),
    /// An AdminServer command is being answered.
    Admin(&'static crate::runtime::admin::Command),
    /// Session bound; requests flow.
    Active,
    /// Closing: flush what is queued, then shut the socket.
    Closing,
}

/// A request waiting for its turn to be answered.
#[derive(Debug)]
pub enum Pending {
    /// A write (or sync) at the broadcast core; answered when its entry arrives.
    Write { xid: i32, shape: ReplyShape, start: Instant },
    /// A read queued behind a write of the same session, or waiting for this
    /// shard's replica to reach `min_zxid` (see `ShardState::released`).
    Read { xid: i32, op: OpCode, req: Request, start: Instant, min_zxid: i64 },
    /// An answer already known that must keep its place: a decode error, or
    /// a write answered ahead of an earlier request (with the zxid its reply carries).
    Ready { xid: i32, op: OpCode, result: Result<Response, ErrorCode>, start: Instant, zxid: Option<i64> },
}

/// Per-connection statistics (cons).
#[derive(Debug, Clone)]
pub struct ConnStats {
    pub received: u64,
    pub sent: u64,
    pub last_op: &'static str,
    pub established_ms: i64,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub last_latency_ms: u64,
    pub latency: Latency,
}

impl ConnStats {
    fn new(now_ms: i64) -> ConnStats {
        ConnStats {
            received: 0,
            sent: 0,
            last_op: "NA",
            established_ms: now_ms,
            last_cxid: -1,
            last_zxid: -1,
            last_response_ms: 0,
            last_latency_ms: 0,
            latency: Latency::default(),
        }
    }
}

/// Mutable state of a connection.
pub struct ConnInner {
    pub phase: Phase,
    pub session_id: i64,
    pub timeout_ms: i32,
    /// Whether the client's ConnectRequest carried the readOnly byte.
    pub read_only_byte: bool,
    /// Identities: `ip:<addr>` plus whatever addAuth added.
    pub ids: Arc<[Id]>,
    /// Bytes waiting for the writer task.
    pub out: BytesMut,
    pub pending: VecDeque<Pending>,
    pub stats: ConnStats,
    /// Where the connection's SASL exchange stands.
    pub sasl: crate::core::sasl::DigestMd5,
    /// A Prometheus scrape's `name[]` filter (empty: every family).
    pub metrics_names: Vec<String>,
}

/// A connection, shared by its reader task, its writer task and the shard.
pub struct Conn {
    pub id: ConnId,
    pub peer: SocketAddr,
    pub inner: RefCell<ConnInner>,
    /// Wakes the writer task: output appended, or closing.
    pub writer_wake: Notify,
    /// Wakes the reader task: handshake settled, queue drained, or closing.
    pub reader_wake: Notify,
}

impl Phase {
    /// Whether the connection came to the client port (a client, or a
    /// four-letter word, which ZooKeeper lists among its connections too),
    /// not to an HTTP endpoint.
    pub fn is_client_port(self) -> bool {
        !matches!(self, Phase::Admin(_) | Phase::FourLetter(crate::runtime::fourlw::METRICS))
    }

    /// Whether the connection answers a report (a four-letter word, a
    /// scrape, an AdminServer command) rather than serving a client.
    pub fn answers_a_report(self) -> bool {
        matches!(self, Phase::FourLetter(_) | Phase::Admin(_))
    }
}

impl Conn {
    /// A fresh connection from `peer`.
    pub fn new(id: ConnId, peer: SocketAddr) -> Conn {
        let ids: Arc<[Id]> = Arc::from(vec![Id::new("ip", &peer.ip().to_string())]);
        let inner = ConnInner {
            phase: Phase::New,
            session_id: 0,
            timeout_ms: 0,
            read_only_byte: true,
            ids,
            out: BytesMut::with_capacity(4096),
            pending: VecDeque::new(),
            stats: ConnStats::new(wall_ms()),
            sasl: crate::core::sasl::DigestMd5::Start,
            metrics_names: Vec::new(),
        };
        Conn { id, peer, inner: RefCell::new(inner), writer_wake: Notify::default(), reader_wake: Notify::default() }
    }

    /// Starts closing: the writer flushes what is queued, then shuts the socket.
    pub fn close(&self) {
        self.inner.borrow_mut().phase = Phase::Closing;
        self.writer_wake.notify();
        self.reader_wake.notify();
    }

    /// Whether the connection is closing.
    pub fn is_closing(&self) -> bool {
        self.inner.borrow().phase == Phase::Closing
    }
}

impl ConnInner {
    /// Appends a reply and records its statistics; the bytes it took.
    pub fn reply(&mut self, xid: i32, zxid: i64, result: &Result<Response, ErrorCode>, op: OpCode, start: Instant) -> usize {
        let before = self.out.len();
        write_response(&mut self.out, xid, zxid, result);
        let latency = start.elapsed().as_millis() as u64;
        let s = &mut self.stats;
        s.sent += 1;
        s.last_op = op_abbrev(op);
        if xid >= 0 {
            s.last_cxid = xid;
        }
        s.last_zxid = zxid;
        s.last_response_ms = wall_ms();
        s.last_latency_ms = latency;
        s.latency.record(latency);
        self.out.len() - before
    }

    /// Appends a watch notification.
    pub fn notify_event(&mut self, event_type: i32, path: &str) {
        write_notification(&mut self.out, event_type, state::SYNC_CONNECTED, path);
        self.stats.sent += 1;
    }

    /// Appends the ConnectResponse.
    pub fn connect_response(&mut self, resp: &ConnectResponse) {
        resp.write(&mut self.out, self.read_only_byte);
        self.stats.sent += 1;
    }

    /// Resets the statistics (crst).
    pub fn reset_stats(&mut self) {
        let established = self.stats.established_ms;
        self.stats = ConnStats::new(established);
    }

    /// This connection's line for cons/stat.
    pub fn report(&self, peer: SocketAddr) -> ConnReport {
        let s = &self.stats;
        ConnReport {
            peer: peer.to_string(),
            session_id: self.session_id,
            queued: self.pending.len(),
            received: s.received,
            sent: s.sent,
            last_op: s.last_op,
            established_ms: s.established_ms,
            timeout_ms: self.timeout_ms,
            last_cxid: s.last_cxid,
            last_zxid: s.last_zxid,
            last_response_ms: s.last_response_ms,
            last_latency_ms: s.last_latency_ms,
            min_latency_ms: s.latency.min_ms,
            avg_latency_ms: s.latency.sum_ms.checked_div(s.latency.count).unwrap_or(0),
            max_latency_ms: s.latency.max_ms,
        }
    }
}

/// The four-letter operation names ZooKeeper shows as `lop` in cons.
pub fn op_abbrev(op: OpCode) -> &'static str {
    use OpCode::*;
    match op {
        Ping => "PING",
        CreateSession => "SESS",
        Multi => "MULT",
        MultiRead => "MLTR",
        Create | Create2 | CreateContainer | CreateTtl => "CREA",
        Delete | DeleteContainer => "DELE",
        SetData => "SETD",
        Reconfig => "RECO",
        SetAcl => "SETA",
        CloseSession => "CLOS",
        Sync => "SYNC",
        Check => "CHEC",
        Exists => "EXIS",
        GetData => "GETD",
        SetWatches => "SETW",
        SetWatches2 => "STW2",
        AddWatch => "ADDW",
        GetAcl => "GETA",
        GetChildren | GetChildren2 => "GETC",
        GetAllChildrenNumber => "GETACN",
        CheckWatches => "CHKW",
        RemoveWatches => "REMW",
        WhoAmI => "HOMI",
        GetEphemerals => "GETE",
        Auth | Sasl | Error => "NA",
    }
}
