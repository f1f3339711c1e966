//! What crosses cores and servers. Shards send [`ToBroadcast`]; the
//! broadcast core sends [`ToShard`]. Each direction is one bounded SPSC
//! channel per shard, so the topology is a star around the broadcast core.
//! Broadcast cores of an ensemble exchange [`PeerMessage`]s.
//!
//! Ordering contract: the broadcast core emits [`Entry`]s in one total order
//! (zxid order for transactions, with handshake and sync replies placed after
//! every transaction prepared before them), and every shard sees every batch
//! in that order. A shard acts only on entries addressed to it, except that it
//! installs every transaction's changes in its tree and fires its watches.

use crate::core::consensus::LogPosition;
use crate::core::consensus::wire::WireMessage;
use crate::core::tree::Effect;
use crate::core::tree::watches::ConnId;
use crate::core::txn::Txn;
use crate::proto::codes::OpCode;
use crate::proto::records::Id;
use crate::proto::request::Request;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Index of a shard core.
pub type ShardId = usize;

/// The connection a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    pub shard: ShardId,
    pub conn: ConnId,
}

/// A handshake, as the broadcast core needs it.
#[derive(Debug, Clone)]
pub struct ConnectInfo {
    pub session_id: i64,
    pub passwd: bytes::Bytes,
    pub timeout_ms: i32,
    pub last_zxid_seen: i64,
}

/// The four-letter words that need state from every core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminQuery {
    /// srvr, stat, mntr, cons, wchs, wchc, wchp, dump, dirs, conf, envi.
    Report,
    /// crst: reset per-connection statistics, then report.
    ResetConnections,
    /// srst: reset server statistics, then report.
    ResetServer,
    /// hash: report, with a digest of the tree (a walk of every node).
    Digest,
}

/// Shard → broadcast.
#[derive(Debug)]
pub enum ToBroadcast {
    /// A write (or closeSession, reconfig), in the session's order.
    Write { origin: Origin, session_id: i64, cxid: i32, op: OpCode, req: Request, ids: Arc<[Id]> },
    /// sync: answered once everything prepared before it is committed.
    Sync { origin: Origin, cxid: i32, path: Option<String> },
    /// A ConnectRequest: new session or re-attach.
    Connect { origin: Origin, info: ConnectInfo },
    /// Sessions with activity since the last report.
    Touch(Vec<i64>),
    /// A four-letter word needs a report.
    Admin { origin: Origin, query: AdminQuery },
    /// A shard's part of a report.
    AdminPart { token: u64, part: Box<ShardReport> },
}

/// One element of the committed stream. Nearly every entry is a
/// transaction, so boxing that variant would only add an allocation each.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Entry {
    /// A committed transaction and what applying it did (worked out once,
    /// on the broadcast core); `origin` is where its reply goes (none for
    /// expiry, the reaper, and writes of clients of other servers);
    /// `position` is its raft entry's.
    Txn { txn: Txn, origin: Option<Origin>, effect: Effect, position: LogPosition },
    /// A sync's reply point.
    Synced { origin: Origin, cxid: i32, path: Option<String> },
    /// A re-attach succeeded with this timeout.
    Attached { origin: Origin, session_id: i64, timeout_ms: i32 },
    /// A re-attach failed (wrong password, unknown or closing session): send the
    /// all-zero ConnectResponse and close.
    Rejected { origin: Origin },
    /// The client has seen a newer zxid than this server: close without answering.
    Refused { origin: Origin },
    /// Another connection took over this connection's session: close it.
    Evict { origin: Origin },
    /// The committed state is now this tree (a snapshot from the leader
    /// replaced this server's state): every core takes it, and client
    /// connections are closed (their watches saw no events for the jump).
    Reset { tree: Arc<crate::core::tree::DataTree>, position: LogPosition },
}

/// Whether and how a server serves clients. Every change of mode closes
/// the client connections the server had (their sessions live on), as a
/// ZooKeeper server does when it starts or stops its read-only server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeMode {
    /// A leader is known: reads and writes.
    ReadWrite,
    /// No leader: client connections are refused (four-letter words are
    /// still answered, saying the server is not serving).
    Closed,
    /// No leader for a while, with `readonlymode.enabled`: clients that
    /// allow it (canBeReadOnly) read this server's last committed state;
    /// writes and syncs get NotReadOnly.
    ReadOnly,
    /// The server is stopping (SIGTERM): no new session, no new request
    /// read; each connection closes once every request it sent is answered.
    /// (Unlike the other changes, this one keeps connections open.)
    Draining,
}

/// Broadcast → shard.
#[derive(Debug)]
pub enum ToShard {
    /// Committed entries, shared by all shards.
    Batch(Arc<Vec<Entry>>),
    /// Send your part of report `token` (resetting first if asked).
    AdminCollect { token: u64, query: AdminQuery },
    /// The finished report for a connection on this shard.
    AdminReply { conn: ConnId, report: Arc<AdminReport> },
    /// Whether and how the server serves clients (see [`ServeMode`]).
    Serving(ServeMode),
}

/// One client connection, for cons/stat.
#[derive(Debug, Clone, Default)]
pub struct ConnReport {
    pub peer: String,
    pub session_id: i64,
    pub queued: usize,
    pub received: u64,
    pub sent: u64,
    pub last_op: &'static str,
    pub established_ms: i64,
    pub timeout_ms: i32,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub last_latency_ms: u64,
    pub min_latency_ms: u64,
    pub avg_latency_ms: u64,
    pub max_latency_ms: u64,
}

/// Request latencies in milliseconds: count, sum, minimum and maximum. One
/// piece of code keeps them for a connection (`cons`) and for a server
/// (`srvr`, `mntr`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub count: u64,
    pub sum_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
}

impl Latency {
    /// Counts one request that took `ms`.
    pub fn record(&mut self, ms: u64) {
        self.min_ms = if self.count == 0 { ms } else { self.min_ms.min(ms) };
        self.max_ms = self.max_ms.max(ms);
        self.sum_ms += ms;
        self.count += 1;
    }

    /// Adds another's requests.
    pub fn merge(&mut self, other: &Latency) {
        if other.count == 0 {
            return;
        }
        self.min_ms = if self.count == 0 { other.min_ms } else { self.min_ms.min(other.min_ms) };
        self.max_ms = self.max_ms.max(other.max_ms);
        self.sum_ms += other.sum_ms;
        self.count += other.count;
    }

    /// The mean, 0 with no request.
    pub fn avg_ms(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum_ms as f64 / self.count as f64 }
    }
}

/// A distribution of microseconds (or of counts), kept as an HDR histogram.
pub type Histogram = hdrhistogram::Histogram<u64>;

/// An empty [`Histogram`] covering 1 to 2^36 (a day of microseconds) at 2
/// significant digits: about 20 KiB, made only when first recorded into.
pub fn new_histogram() -> Histogram {
    Histogram::new_with_bounds(1, 1 << 36, 2).expect("valid histogram bounds")
}

/// Request latencies by operation, in microseconds.
#[derive(Debug, Clone, Default)]
pub struct OpLatencies(pub BTreeMap<OpCode, Histogram>);

impl OpLatencies {
    /// Counts one `op` that took `micros`.
    pub fn record(&mut self, op: OpCode, micros: u64) {
        self.0.entry(op).or_insert_with(new_histogram).saturating_record(micros.max(1));
    }

    /// Adds another's requests.
    pub fn merge(&mut self, other: &OpLatencies) {
        for (op, h) in &other.0 {
            self.0.entry(*op).or_insert_with(new_histogram).add(h).expect("histograms of one shape add");
        }
    }

    /// Every operation's requests that are (or are not) updates, together.
    pub fn merged(&self, updates: bool) -> Histogram {
        let mut all = new_histogram();
        for (op, h) in &self.0 {
            if op.is_update() == updates {
                all.add(h).expect("histograms of one shape add");
            }
        }
        all
    }
}

/// Sizes of replies sent, in bytes: the last, smallest and largest (-1: none yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferStats {
    pub last: i64,
    pub min: i64,
    pub max: i64,
}

impl Default for BufferStats {
    fn default() -> BufferStats {
        BufferStats { last: -1, min: -1, max: -1 }
    }
}

impl BufferStats {
    /// Counts one buffer of `len` bytes.
    pub fn record(&mut self, len: usize) {
        let len = len as i64;
        self.last = len;
        self.min = if self.min < 0 { len } else { self.min.min(len) };
        self.max = self.max.max(len);
    }

    /// Adds another's (its last counts as the last when it has one).
    pub fn merge(&mut self, other: &BufferStats) {
        if other.last >= 0 {
            self.last = other.last;
            self.min = if self.min < 0 { other.min } else { self.min.min(other.min) };
            self.max = self.max.max(other.max);
        }
    }
}

/// The broadcast core's counters since the process started (mntr, /metrics).
#[derive(Debug, Clone)]
pub struct BroadcastStats {
    /// Transactions applied (ZooKeeper's `commit_count`).
    pub commits: u64,
    /// Transactions proposed as leader (`proposal_count`).
    pub proposals: u64,
    /// Times the server was left without a leader (`looking_count`).
    pub elections: u64,
    /// Sessions expired as leader.
    pub sessions_expired: u64,
    /// Snapshots sent to followers behind the log (`snap_count`).
    pub snapshots_sent: u64,
    /// raft entries per persist of the log (the group-commit batch;
    /// ZooKeeper's `sync_processor_batch_size`).
    pub batch_sizes: Histogram,
    /// How long each persist took, in microseconds (`fsynctime`, which ZooKeeper gives in ms).
    pub sync_micros: Histogram,
    /// raft's term, commit index and applied index now.
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
}

impl Default for BroadcastStats {
    fn default() -> BroadcastStats {
        BroadcastStats {
            commits: 0,
            proposals: 0,
            elections: 0,
            sessions_expired: 0,
            snapshots_sent: 0,
            batch_sizes: new_histogram(),
            sync_micros: new_histogram(),
            term: 0,
            commit_index: 0,
            applied_index: 0,
        }
    }
}

/// Request latency and packet counters of one shard (srvr, mntr, /metrics).
#[derive(Debug, Clone, Default)]
pub struct ServerCounters {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub latency: Latency,
    pub outstanding: u64,
    pub bytes_received: u64,
    pub auth_failed: u64,
    /// Bytes of replies sent (ZooKeeper's `response_bytes`), and their sizes.
    pub response_bytes: u64,
    pub response_sizes: BufferStats,
    /// Connections accepted on the client port, and refused there (the
    /// connection throttle, maxClientCnxns).
    pub connections_accepted: u64,
    pub connections_refused: u64,
    pub op_latencies: OpLatencies,
}

impl ServerCounters {
    /// Adds another shard's counters.
    pub fn merge(&mut self, other: &ServerCounters) {
        self.latency.merge(&other.latency);
        self.packets_received += other.packets_received;
        self.packets_sent += other.packets_sent;
        self.outstanding += other.outstanding;
        self.bytes_received += other.bytes_received;
        self.auth_failed += other.auth_failed;
        self.response_bytes += other.response_bytes;
        self.response_sizes.merge(&other.response_sizes);
        self.connections_accepted += other.connections_accepted;
        self.connections_refused += other.connections_refused;
        self.op_latencies.merge(&other.op_latencies);
    }
}

/// A shard's contribution to a four-letter-word report.
#[derive(Debug, Clone, Default)]
pub struct ShardReport {
    pub conns: Vec<ConnReport>,
    pub counters: ServerCounters,
    /// Total watches (data and child tables).
    pub watch_count: usize,
    /// Data-table watches: path → watching session ids.
    pub data_watches: Vec<(String, Vec<i64>)>,
}

/// Everything the four-letter words print, gathered from all cores.
#[derive(Debug, Clone, Default)]
pub struct AdminReport {
    pub last_zxid: i64,
    pub node_count: usize,
    pub approximate_data_size: u64,
    pub ephemerals: Vec<(i64, Vec<String>)>,
    /// (session id, timeout ms, expiry time in wall-clock ms).
    pub sessions: Vec<(i64, i32, i64)>,
    pub shards: Vec<ShardReport>,
    pub uptime_ms: u64,
    /// `standalone`, `leader`, `follower` or `observer`.
    pub mode: &'static str,
    /// The tree's digest (for `hash` only).
    pub digest: Option<u64>,
    /// The server's place in its ensemble (none when standalone).
    pub ensemble: Option<EnsembleReport>,
    /// The broadcast core's counters.
    pub broadcast: BroadcastStats,
    /// Quotas by namespace.
    pub quotas: Vec<crate::core::tree::NamespaceQuota>,
}

/// A server's place in its ensemble, for `mntr`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnsembleReport {
    /// ZooKeeper's `zk_peer_state`: `leading - broadcast`, `following - broadcast`,
    /// `observing - broadcast` or `looking` (no leader known).
    pub peer_state: &'static str,
    /// The number of voters.
    pub quorum_size: usize,
    /// The leader this server knows (0: none).
    pub leader_id: u64,
    /// What only the leader knows.
    pub leader: Option<LeaderReport>,
}

/// The leader's view of its followers and proposals, for `mntr`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeaderReport {
    /// Other servers heard from within an election timeout (followers and observers).
    pub learners: usize,
    /// Followers heard from and receiving entries as they are proposed
    /// (raft's replicate state): ZooKeeper's synced followers.
    pub synced_followers: usize,
    /// Observers likewise.
    pub synced_observers: usize,
    /// syncs (raft ReadIndex requests) waiting for the leader to confirm its leadership.
    pub pending_syncs: usize,
    /// How long this server has led, in milliseconds.
    pub uptime_ms: u64,
    /// Bytes of this term's proposals: the last, smallest and largest (-1 before the first).
    pub last_proposal_size: i64,
    pub min_proposal_size: i64,
    pub max_proposal_size: i64,
}

/// Broadcast core → broadcast core of another server of the ensemble.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum PeerMessage {
    /// A raft message, in keeper's wire form.
    Raft(Box<WireMessage>),
    /// A client's write, for the leader to prepare: the request as the
    /// client sent it (jute, without the frame length), and the
    /// connection's identities (scheme, id). `malformed`: the body did not
    /// decode (it still takes a zxid, as in ZooKeeper). `server`: the
    /// server whose client sent it (a stopping leader passes on the writes
    /// it held to its successor).
    Forward { server: u64, session_id: i64, cxid: i32, op: i32, request: Vec<u8>, ids: Vec<(String, String)>, malformed: bool },
    /// A client of `server` connected with no session: open this one (an
    /// id from that server's range) with this negotiated timeout.
    CreateSession { server: u64, session_id: i64, timeout_ms: i32 },
    /// A client re-attached to a session on `server`, with the right password:
    /// is it alive? (`shard`/`conn`: the connection, echoed back.)
    Revalidate { server: u64, session_id: i64, timeout_ms: i32, shard: u32, conn: u64 },
    /// The leader's answer to `Revalidate`.
    Revalidated { session_id: i64, timeout_ms: i32, shard: u32, conn: u64, alive: bool },
    /// Sessions with client activity on the sending server.
    Touch(Vec<i64>),
    /// The sending server started with no data (its first start, or its
    /// data directory was wiped): a leader forgets what it knew of its log.
    StartedEmpty,
    /// A piece of a snapshot file the leader sends ahead of the raft
    /// message that installs it: the file of the snapshot at `zxid` (raft
    /// position `index`, `term`), from byte `offset`; `last` ends it.
    SnapshotChunk { zxid: i64, index: u64, term: u64, offset: u64, data: Vec<u8>, last: bool },
    /// The leader is stopping and hands its leadership to server `to`: when
    /// `to` leads, the writes the receiver forwarded are still answered
    /// (every one reached the old leader's log or is passed on to `to`).
    Handover { to: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_keeps_its_minimum_from_the_first_request_and_merges() {
        let mut conn = Latency::default();
        for ms in [5, 3, 9] {
            conn.record(ms);
        }
        assert_eq!(conn, Latency { count: 3, sum_ms: 17, min_ms: 3, max_ms: 9 });
        let mut server = Latency::default();
        server.merge(&Latency::default());
        server.merge(&conn);
        server.merge(&Latency { count: 1, sum_ms: 4, min_ms: 4, max_ms: 4 });
        assert_eq!((server.count, server.min_ms, server.max_ms), (4, 3, 9));
        assert_eq!(Latency::default().avg_ms(), 0.0);
    }
}
