//! A shard core: owns client connections and their sessions' watches, keeps
//! its own map of the committed tree (a replica whose nodes are shared with
//! every other core's, see `core::tree`), answers reads locally and forwards
//! writes to the broadcast core.
//!
//! Tasks on the shard's executor: an accept loop, a reader and a writer per
//! connection, the committed-stream consumer, and a touch reporter. All share
//! one [`ShardState`] through `Rc<RefCell<_>>`; no borrow is held across an
//! await. The consumer never waits on the broadcast core, which is what keeps
//! the two directions of the star from deadlocking.
//!
//! Reads across shards: a write's reply leaves its shard once that shard has
//! applied it, and another shard may not have yet. So that a read which
//! starts after a write completed anywhere sees it (as on a single ZooKeeper
//! server), the broadcast core raises a shared `released` zxid before it
//! hands a batch to the shards, and a read waits until its shard's replica
//! has applied everything released when the read arrived.

mod budget;
mod conn;
mod read_only;
mod requests;
mod serve;

pub use conn::Conn;
pub use requests::Action;
pub use serve::{ShardSetup, run_shard};

use crate::config::Config;
use crate::core::acl;
use crate::core::messages::{AdminQuery, Entry, Origin, ServeMode, ServerCounters, ShardId, ShardReport};
use crate::core::read::{self, ReadContext};
use crate::core::reply::write_reply;
use crate::core::session;
use crate::core::tree::watches::{Notification, WatchRegistry};
use crate::core::tree::{Applied, DataTree, TreeEvent};
use crate::core::txn::TxnBody;
use crate::proto::codes::{ErrorCode, OpCode, perms, xid};
use crate::proto::frame::ConnectResponse;
use crate::proto::response::Response;
use conn::{ConnId, Pending, Phase};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Everything a shard core owns.
pub struct ShardState {
    pub id: ShardId,
    pub cfg: Arc<Config>,
    pub tree: DataTree,
    pub watches: WatchRegistry,
    pub conns: HashMap<ConnId, Rc<Conn>>,
    /// The connection each session is bound to, on this shard.
    pub by_session: HashMap<i64, ConnId>,
    /// Sessions with requests since the last touch report.
    pub touched: HashSet<i64>,
    pub counters: ServerCounters,
    next_conn: ConnId,
    notes: Vec<Notification>,
    /// Connections with new output since the last flush.
    dirty: HashSet<ConnId>,
    /// The highest zxid the broadcast core has handed (or is handing) to the shards.
    released: Arc<AtomicI64>,
    /// Connections whose queue starts with a read waiting for the replica.
    waiting: HashSet<ConnId>,
    /// How clients are served (the broadcast core says).
    pub serve: ServeMode,
    /// Sessions opened here in read-only mode so far (their ids count up).
    read_only_sessions: i64,
    /// Writes in flight, against this shard's share of globalOutstandingLimit.
    pub budget: budget::WriteBudget,
}

impl ShardState {
    /// A shard starting from `tree` (the recovered state).
    pub fn new(id: ShardId, cfg: Arc<Config>, tree: DataTree, released: Arc<AtomicI64>) -> ShardState {
        ShardState {
            released,
            waiting: HashSet::new(),
            serve: ServeMode::Closed,
            read_only_sessions: 0,
            budget: budget::WriteBudget::new(cfg.throttle.outstanding_max(), cfg.shards),
            id,
            cfg,
            tree,
            watches: WatchRegistry::default(),
            conns: HashMap::new(),
            by_session: HashMap::new(),
            touched: HashSet::new(),
            counters: ServerCounters::default(),
            next_conn: 1,
            notes: Vec::new(),
            dirty: HashSet::new(),
        }
    }

    /// Registers a new connection.
    pub fn add_conn(&mut self, peer: std::net::SocketAddr) -> Rc<Conn> {
        let id = self.next_conn;
        self.next_conn += 1;
        let conn = Rc::new(Conn::new(id, peer));
        self.conns.insert(id, conn.clone());
        conn
    }

    /// Forgets a closed connection and its watches (its session lives on).
    pub fn remove_conn(&mut self, conn: &Conn) {
        let unanswered = conn.inner.borrow().pending.iter().filter(|p| matches!(p, Pending::Write { .. })).count();
        self.writes_answered(unanswered);
        self.conns.remove(&conn.id);
        self.watches.remove_conn(conn.id);
        self.dirty.remove(&conn.id);
        let session = conn.inner.borrow().session_id;
        if self.by_session.get(&session) == Some(&conn.id) {
            self.by_session.remove(&session);
        }
    }

    /// `n` writes in flight were answered or dropped: readers waiting for
    /// room go on once there is some.
    fn writes_answered(&mut self, n: usize) {
        for id in self.budget.give_back(n) {
            if let Some(c) = self.conns.get(&id) {
                c.reader_wake.notify();
            }
        }
    }

    /// Answers the reads that were waiting for the replica to catch up.
    pub fn run_waiting_reads(&mut self) {
        for id in std::mem::take(&mut self.waiting) {
            if let Some(c) = self.conns.get(&id).cloned() {
                self.run_queued_reads(&c);
                self.mark_dirty(id);
                c.reader_wake.notify();
                self.close_if_drained(&c);
            }
        }
    }

    /// The connections of clients (not those answering a report).
    fn client_conns(&self) -> Vec<Rc<Conn>> {
        self.conns.values().filter(|c| !c.inner.borrow().phase.answers_a_report()).cloned().collect()
    }

    /// Serves clients this way from now on. Any change from serving closes
    /// every client connection (their sessions live on; the clients
    /// reconnect, here or elsewhere), except draining, which closes each
    /// once every request it sent is answered.
    pub fn set_serve_mode(&mut self, mode: ServeMode) {
        let clients = self.client_conns();
        self.serve = match (self.serve, mode) {
            (_, ServeMode::Draining) => {
                tracing::info!("shard {}: stopping; draining {} client connections", self.id, clients.len());
                self.serve = ServeMode::Draining;
                for c in &clients {
                    self.close_if_drained(c);
                }
                ServeMode::Draining
            }
            (ServeMode::Closed, mode) => mode,
            (old, mode) if old != mode => {
                let why = match mode {
                    ServeMode::Closed => "no leader, so not serving",
                    _ => "a leader is back, so read-only mode ends",
                };
                tracing::info!("shard {}: {why}; closing {} client connections", self.id, clients.len());
                for c in clients {
                    c.close();
                }
                mode
            }
            (_, mode) => mode,
        };
    }

    /// While draining: closes the connection once nothing it sent waits for an answer.
    fn close_if_drained(&self, c: &Rc<Conn>) {
        if self.serve == ServeMode::Draining && c.inner.borrow().pending.is_empty() {
            c.close();
        }
    }

    /// Wakes the writers of connections that received output.
    pub fn flush(&mut self) {
        for id in self.dirty.drain() {
            if let Some(c) = self.conns.get(&id) {
                c.writer_wake.notify();
            }
        }
    }

    fn mark_dirty(&mut self, conn: ConnId) {
        self.dirty.insert(conn);
    }

    /// Takes one committed entry: a transaction's changes go into this
    /// shard's tree and its events to the watches; entries for this shard's
    /// connections produce replies.
    pub fn on_entry(&mut self, entry: &Entry) {
        match entry {
            Entry::Txn { txn, origin, effect, .. } => {
                self.tree.install(txn.zxid, &effect.changes);
                #[cfg(test)]
                let events_late = crate::core::planted::planted(crate::core::planted::Bug::ReplyBeforeWatchEvent);
                #[cfg(not(test))]
                let events_late = false;
                if !events_late {
                    self.deliver_events(&effect.events);
                }
                let applied = &effect.applied;
                let mine = origin.filter(|o| o.shard == self.id);
                match &txn.body {
                    TxnBody::CreateSession { timeout_ms } => {
                        if let Some(o) = mine {
                            self.bind_session(o, txn.session_id, *timeout_ms);
                        }
                    }
                    TxnBody::CloseSession => self.end_session(txn.session_id, txn.cxid, mine),
                    _ => {
                        if let Some(o) = mine {
                            self.complete(o.conn, txn.cxid, true, |shape| write_reply(shape, applied));
                        }
                    }
                }
                if events_late {
                    self.deliver_events(&effect.events);
                }
                debug_assert!(!matches!(applied, Applied::Session) || matches!(txn.body, TxnBody::CreateSession { .. } | TxnBody::CloseSession));
            }
            Entry::Synced { origin, cxid, path } if origin.shard == self.id => {
                let path = path.clone();
                self.complete(origin.conn, *cxid, false, |_| Ok(Response::Path(path)));
            }
            Entry::Attached { origin, session_id, timeout_ms } if origin.shard == self.id => self.bind_session(*origin, *session_id, *timeout_ms),
            Entry::Rejected { origin } if origin.shard == self.id => {
                if let Some(c) = self.conns.get(&origin.conn).cloned() {
                    c.inner.borrow_mut().connect_response(&ConnectResponse::REJECTED);
                    c.close();
                }
            }
            Entry::Reset { tree, .. } => {
                // A snapshot replaced the state: watches saw no event for the
                // jump, so every client reconnects (and re-registers them).
                self.tree = DataTree::clone(tree);
                let clients = self.client_conns();
                for c in clients {
                    c.close();
                }
            }
            Entry::Refused { origin } | Entry::Evict { origin } if origin.shard == self.id => {
                if let Some(c) = self.conns.get(&origin.conn) {
                    c.close();
                }
            }
            _ => {}
        }
    }

    fn deliver_events(&mut self, events: &[TreeEvent]) {
        let mut notes = std::mem::take(&mut self.notes);
        notes.clear();
        for ev in events {
            notes.clear();
            self.watches.trigger(ev, &mut notes);
            for note in &notes {
                let Some(c) = self.conns.get(&note.conn) else { continue };
                let mut inner = c.inner.borrow_mut();
                if acl::allowed(ev.acl(), perms::READ, &inner.ids) {
                    inner.notify_event(note.kind as i32, &note.path);
                    self.counters.packets_sent += 1;
                    self.dirty.insert(note.conn);
                }
            }
        }
        self.notes = notes;
    }

    fn bind_session(&mut self, origin: Origin, session_id: i64, timeout_ms: i32) {
        let Some(c) = self.conns.get(&origin.conn).cloned() else {
            return;
        };
        {
            let mut inner = c.inner.borrow_mut();
            if inner.phase != Phase::Connecting {
                return;
            }
            inner.phase = Phase::Active;
            inner.session_id = session_id;
            inner.timeout_ms = timeout_ms;
            inner.connect_response(&ConnectResponse { timeout_ms, session_id, passwd: session::password(session_id), read_only: false });
        }
        self.by_session.insert(session_id, c.id);
        self.touched.insert(session_id);
        self.mark_dirty(c.id);
        c.reader_wake.notify();
    }

    /// A closeSession was applied: reply to the closer, close the session's connection.
    fn end_session(&mut self, session_id: i64, cxid: i32, closer: Option<Origin>) {
        if let Some(o) = closer {
            self.complete(o.conn, cxid, true, |_| Ok(Response::Empty));
        }
        if let Some(conn_id) = self.by_session.remove(&session_id)
            && let Some(c) = self.conns.get(&conn_id)
        {
            c.close();
        }
    }

    /// Answers a write (or sync) of a connection, then every read queued
    /// behind it. Replies leave in request order: one that completes ahead
    /// of an earlier request of its connection (a sync answered by a
    /// ReadIndex can overtake the connection's writes, or be overtaken by
    /// them) keeps its place in the queue, with its answer, until the
    /// requests before it are answered. A transaction's reply carries its
    /// own zxid (`own_zxid`); a sync's, the zxid when it leaves, as in
    /// ZooKeeper, where it leaves in turn.
    fn complete(&mut self, conn_id: ConnId, cxid: i32, own_zxid: bool, result: impl FnOnce(&crate::core::reply::ReplyShape) -> Result<Response, ErrorCode>) {
        let Some(c) = self.conns.get(&conn_id).cloned() else {
            return;
        };
        let zxid = self.tree.last_zxid().raw();
        {
            let mut inner = c.inner.borrow_mut();
            // Not found: the connection was reset since; the reply is dropped.
            let Some(at) = inner.pending.iter().position(|p| matches!(p, Pending::Write { xid, .. } if *xid == cxid)) else { return };
            let Some(Pending::Write { xid, shape, start }) = inner.pending.remove(at) else { unreachable!("found above") };
            drop(inner);
            self.writes_answered(1);
            if c.is_closing() {
                // Closed by a reset to a snapshot (or an eviction): a reply
                // now could reflect changes whose watch events never came.
                return;
            }
            let mut inner = c.inner.borrow_mut();
            let r = result(&shape);
            if at > 0 {
                inner.pending.insert(at, Pending::Ready { xid, op: shape.op, result: r, start, zxid: own_zxid.then_some(zxid) });
                return;
            }
            let bytes = inner.reply(xid, zxid, &r, shape.op, start);
            self.counters.record_reply(shape.op, start, bytes);
        }
        self.run_queued_reads(&c);
        self.mark_dirty(conn_id);
        c.reader_wake.notify();
        self.close_if_drained(&c);
    }

    /// The zxid a read arriving now must see: everything released so far.
    pub fn read_barrier(&self) -> i64 {
        self.released.load(Ordering::Acquire)
    }

    /// Answers queued reads until the next write, a read the replica is not
    /// yet fresh enough for, or the end of the queue.
    fn run_queued_reads(&mut self, c: &Rc<Conn>) {
        if c.is_closing() {
            // Nothing more is answered on a closing connection (see `complete`).
            return;
        }
        let applied = self.tree.last_zxid().raw();
        loop {
            let next = {
                let mut inner = c.inner.borrow_mut();
                match inner.pending.front() {
                    Some(Pending::Read { min_zxid, .. }) if *min_zxid > applied => {
                        self.waiting.insert(c.id);
                        None
                    }
                    Some(Pending::Read { .. }) | Some(Pending::Ready { .. }) => inner.pending.pop_front(),
                    _ => None,
                }
            };
            match next {
                Some(Pending::Read { xid, op, req, start, .. }) => self.answer_read(c, xid, op, &req, start),
                Some(Pending::Ready { xid, op, result, start, zxid }) => {
                    let zxid = zxid.unwrap_or_else(|| self.tree.last_zxid().raw());
                    c.inner.borrow_mut().reply(xid, zxid, &result, op, start);
                }
                _ => return,
            }
        }
    }

    /// Answers a read now, from this shard's replica.
    pub fn answer_read(&mut self, c: &Rc<Conn>, xid: i32, op: OpCode, req: &crate::proto::request::Request, start: std::time::Instant) {
        let mut notes = std::mem::take(&mut self.notes);
        notes.clear();
        let mut inner = c.inner.borrow_mut();
        let ctx = ReadContext { conn: c.id, session_id: inner.session_id, ids: &inner.ids };
        let result = read::read(&self.tree, &mut self.watches, op, req, &ctx, &mut notes);
        for note in &notes {
            debug_assert_eq!(note.conn, c.id, "setWatches fires only for its own connection");
            inner.notify_event(note.kind as i32, &note.path);
        }
        let reply_xid = if op == OpCode::Ping { xid::PING } else { xid };
        let bytes = inner.reply(reply_xid, self.tree.last_zxid().raw(), &result, op, start);
        drop(inner);
        self.notes = notes;
        self.counters.record_reply(op, start, bytes);
        self.mark_dirty(c.id);
    }

    /// This shard's part of a four-letter-word report.
    pub fn report(&mut self, query: AdminQuery) -> ShardReport {
        match query {
            AdminQuery::ResetConnections => self.conns.values().for_each(|c| c.inner.borrow_mut().reset_stats()),
            AdminQuery::ResetServer => self.counters = ServerCounters::default(),
            AdminQuery::Report | AdminQuery::Digest => {}
        }
        let mut counters = self.counters.clone();
        counters.outstanding = self.conns.values().map(|c| c.inner.borrow().pending.len() as u64).sum();
        debug_assert_eq!(
            self.budget.in_flight(),
            self.conns.values().map(|c| c.inner.borrow().pending.iter().filter(|p| matches!(p, Pending::Write { .. })).count()).sum::<usize>(),
            "the budget counts exactly the writes in flight"
        );
        let session_of = |conn: ConnId| self.conns.get(&conn).map_or(0, |c| c.inner.borrow().session_id);
        ShardReport {
            conns: self.conns.values().filter(|c| c.inner.borrow().phase.is_client_port()).map(|c| c.inner.borrow().report(c.peer)).collect(),
            counters,
            watch_count: self.watches.watch_count(),
            data_watches: self.watches.data_paths().map(|(p, conns)| (p.clone(), conns.into_iter().map(session_of).collect())).collect(),
        }
    }
}

impl ServerCounters {
    /// Records one answered request: its latency, and its reply of `bytes`.
    pub fn record_reply(&mut self, op: OpCode, start: std::time::Instant, bytes: usize) {
        let took = start.elapsed();
        self.latency.record(took.as_millis() as u64);
        self.op_latencies.record(op, took.as_micros() as u64);
        self.packets_sent += 1;
        self.response_bytes += bytes as u64;
        self.response_sizes.record(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::txn::Txn;
    use crate::core::zxid::Zxid;

    #[test]
    fn replica_installs_committed_stream_in_order() {
        let mut shard = ShardState::new(0, Arc::new(Config::default()), DataTree::new(), Arc::new(AtomicI64::new(0)));
        let txn = Txn { zxid: Zxid::from_raw(1), time_ms: 0, session_id: 5, cxid: 0, body: TxnBody::CreateSession { timeout_ms: 4000 } };
        let effect = DataTree::new().apply(&txn);
        shard.on_entry(&Entry::Txn { txn, origin: None, effect, position: Default::default() });
        assert_eq!(shard.tree.last_zxid(), Zxid::from_raw(1));
        assert_eq!(shard.tree.sessions().get(&5), Some(&4000));
    }
}
