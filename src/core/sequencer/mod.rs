//! The sequencer: the broadcast core's logic as a pure state machine, the
//! one place where writes are ordered. It holds no file, socket, clock,
//! task or process handle; a driver (`runtime::broadcast`, or a test, or
//! the simulator) feeds it inputs and carries out its outputs, the way
//! raft-rs's `RawNode` is driven.
//!
//! It prepares each write against the committed tree plus the outstanding
//! changes of writes prepared before it ([`Outstanding`]), stamps zxid and
//! time, and hands the transaction to the log. Once the log says it is
//! durable, the transaction commits: it is applied to the committed tree,
//! which works out its effect (the reply, the watch triggers, the node
//! versions every other tree installs), and released to the shards. It
//! also owns sessions and their expiry, handshakes, the container and TTL
//! reaper's decisions, and gathering four-letter-word reports.
//!
//! Standalone, "durable" is "committed". In an ensemble a consensus node
//! slots in between: persisted entries are acknowledged to it, and commit
//! follows its quorum; nothing else here changes.
//!
//! # Inputs
//! - [`Sequencer::on_message`]: a shard's message (a write, sync, handshake,
//!   session touches, a four-letter word), with the time;
//! - [`Sequencer::tick`]: time passes (session expiry, the reaper);
//! - [`Sequencer::persisted`]: the log is durable up to a zxid;
//! - [`Sequencer::storage_failed`]: the log could not be written.
//!
//! # Outputs: [`Ready`], and the rules for acting on one
//! After feeding inputs, the driver takes a [`Ready`] with
//! [`Sequencer::ready`] and acts on it in this order:
//! 1. `fatal`: if set, stop at once and act on nothing else, so no reply
//!    ever leaves for a write that was not logged.
//! 2. `append`: append every record to the log, in order. Their zxids
//!    strictly increase and continue the log.
//! 3. `persist`: if set, start a persist (group commit) of everything
//!    appended, which reaches exactly that zxid. The sequencer asks for one
//!    persist at a time: the next comes only after [`Sequencer::persisted`]
//!    reported this one, and covers everything appended meanwhile. Writes
//!    keep being prepared and appended while a persist runs (pipelining).
//! 4. `release`: hand the entries to every shard, in order, after raising
//!    the cross-shard read barrier to [`Ready::last_released_zxid`]. Only
//!    committed transactions are released, in zxid order, each with its
//!    effect worked out on the committed tree; a reply that needs no
//!    transaction (sync, re-attach, refusals) follows every transaction
//!    prepared before it.
//! 5. `messages`: send each to its shard (four-letter-word collection).
//!
//! A failed call leaves the state untouched: a write that fails its checks
//! is not a failed call; it becomes a transaction that fails (it takes a
//! zxid, as in ZooKeeper).

#[cfg(test)]
mod tests;

use crate::config::Config;
use crate::core::messages::{AdminReport, ConnectInfo, Entry, Origin, ShardId, ShardReport, ToBroadcast, ToShard};
use crate::core::outstanding::Outstanding;
use crate::core::prep::{self, PrepContext, Prepared};
use crate::core::session::{self, SessionTracker};
use crate::core::tree::DataTree;
use crate::core::txn::{LogRecord, NodeKind, Txn, TxnBody};
use crate::core::zxid::Zxid;
use crate::proto::codes::OpCode;
use crate::proto::request::Request;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// The time, as the driver read it: monotonic milliseconds (since any
/// fixed point; session expiry and the reaper's schedule) and wall-clock
/// milliseconds since the Unix epoch (transaction times, TTLs, reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub mono_ms: i64,
    pub wall_ms: i64,
}

/// What the driver must do, in field order (see the module documentation).
#[derive(Debug, Default)]
pub struct Ready {
    /// Stop now: storage failed under the acknowledged-write guarantee.
    pub fatal: Option<String>,
    /// Records to append to the log, in zxid order.
    pub append: Vec<LogRecord>,
    /// Start a persist that makes the log durable up to this zxid.
    pub persist: Option<Zxid>,
    /// Committed entries for every shard, in order.
    pub release: Vec<Entry>,
    /// Messages for single shards.
    pub messages: Vec<(ShardId, ToShard)>,
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.fatal.is_none() && self.append.is_empty() && self.persist.is_none() && self.release.is_empty() && self.messages.is_empty()
    }

    /// The zxid of the last transaction in `release`.
    pub fn last_released_zxid(&self) -> Option<Zxid> {
        self.release.iter().rev().find_map(|e| if let Entry::Txn { txn, .. } = e { Some(txn.zxid) } else { None })
    }
}

/// An entry prepared but not yet released, in release order.
#[derive(Debug)]
enum Pending {
    /// A transaction waiting to commit; `origin` is where its reply goes.
    Txn { txn: Txn, origin: Option<Origin> },
    /// A reply that needs no transaction: released once everything before it is.
    Reply(Entry),
}

/// A four-letter-word report being gathered from the shards.
#[derive(Debug)]
struct Gather {
    origin: Origin,
    parts: Vec<ShardReport>,
    remaining: usize,
}

/// The broadcast core's state: see the module documentation.
#[derive(Debug)]
pub struct Sequencer {
    cfg: Arc<Config>,
    shard_count: usize,
    /// The committed state: every released transaction applied.
    tree: DataTree,
    /// What prepared, uncommitted transactions changed, for prep to see.
    outstanding: Outstanding,
    /// Prepared entries not yet released, in order.
    pending: VecDeque<Pending>,
    /// The zxid of the last prepared transaction.
    prepared: Zxid,
    /// The log is durable up to here (standalone: committed up to here).
    durable: Zxid,
    /// The persist in flight and the zxid it reaches.
    persisting: Option<Zxid>,
    sessions: SessionTracker,
    /// The connection each session is attached to.
    owners: HashMap<i64, Origin>,
    gathers: HashMap<u64, Gather>,
    next_token: u64,
    started: Clock,
    now: Clock,
    /// When the reaper runs next (monotonic ms).
    next_reap_ms: i64,
    /// Outputs gathered since the last `ready`.
    out: Ready,
}

impl Sequencer {
    /// A sequencer starting from the recovered tree (which the log holds
    /// entirely, durably), serving `shard_count` shards. Sessions restored
    /// from disk count as touched now, as in ZooKeeper.
    pub fn new(cfg: Arc<Config>, tree: DataTree, shard_count: usize, now: Clock) -> Sequencer {
        assert!(shard_count > 0, "at least one shard");
        let mut sessions = SessionTracker::new(cfg.tick_ms as i64, session::first_session_id(cfg.my_id, now.wall_ms));
        for (&id, &timeout) in tree.sessions() {
            sessions.add(id, timeout, now.mono_ms);
        }
        let zxid = tree.last_zxid();
        let next_reap_ms = now.mono_ms + cfg.container_check_interval_ms as i64;
        Sequencer {
            cfg,
            shard_count,
            tree,
            outstanding: Outstanding::default(),
            pending: VecDeque::new(),
            prepared: zxid,
            durable: zxid,
            persisting: None,
            sessions,
            owners: HashMap::new(),
            gathers: HashMap::new(),
            next_token: 1,
            started: now,
            now,
            next_reap_ms,
            out: Ready::default(),
        }
    }

    /// The zxid of the last prepared transaction.
    pub fn prepared_zxid(&self) -> Zxid {
        self.prepared
    }

    /// The zxid of the last committed transaction.
    pub fn committed_zxid(&self) -> Zxid {
        self.tree.last_zxid()
    }

    /// The committed tree.
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// Takes the outputs gathered since the last call.
    pub fn ready(&mut self) -> Ready {
        self.release_committed();
        if self.persisting.is_none() && self.prepared > self.durable {
            self.persisting = Some(self.prepared);
            self.out.persist = Some(self.prepared);
        }
        debug_assert!(self.out.append.windows(2).all(|w| w[0].zxid < w[1].zxid), "appends in zxid order");
        std::mem::take(&mut self.out)
    }

    /// Advances the time the sequencer stamps and expires by.
    fn advance(&mut self, now: Clock) {
        assert!(now.mono_ms >= self.now.mono_ms, "monotonic time never goes back: {} after {}", now.mono_ms, self.now.mono_ms);
        self.now = now;
    }

    /// A message from a shard.
    pub fn on_message(&mut self, msg: ToBroadcast, now: Clock) {
        self.advance(now);
        match msg {
            ToBroadcast::Write { origin, session_id, cxid, op, req, ids } => {
                if !self.sessions.touch(session_id, self.now.mono_ms) {
                    // ZooKeeper drops requests of unknown or closing sessions silently.
                    return;
                }
                let prepared = if op == OpCode::CloseSession {
                    self.sessions.set_closing(session_id);
                    prep::prep_close_session(&self.tree, &self.outstanding, session_id)
                } else {
                    let ctx = PrepContext { session_id, ids: &ids, extended_types: self.cfg.extended_types };
                    prep::prep(&self.tree, &self.outstanding, op, &req, &ctx)
                };
                self.propose(session_id, cxid, prepared, Some(origin));
            }
            ToBroadcast::Sync { origin, cxid, path } => self.pending.push_back(Pending::Reply(Entry::Synced { origin, cxid, path })),
            ToBroadcast::Connect { origin, info } => self.connect(origin, info),
            ToBroadcast::Touch(ids) => {
                for id in ids {
                    self.sessions.touch(id, self.now.mono_ms);
                }
            }
            ToBroadcast::Admin { origin, query } => {
                let token = self.next_token;
                self.next_token += 1;
                let earlier = self.gathers.insert(token, Gather { origin, parts: Vec::with_capacity(self.shard_count), remaining: self.shard_count });
                assert!(earlier.is_none(), "report tokens are never reused");
                for shard in 0..self.shard_count {
                    self.out.messages.push((shard, ToShard::AdminCollect { token, query }));
                }
            }
            ToBroadcast::AdminPart { token, part } => self.admin_part(token, part),
        }
    }

    /// Time passes: expire sessions whose time is up and, when due, reap
    /// containers and TTL nodes.
    pub fn tick(&mut self, now: Clock) {
        self.advance(now);
        for id in self.sessions.expire(self.now.mono_ms) {
            eprintln!("keeper: expiring session 0x{id:x}, timeout of {} ms exceeded", self.sessions.timeout_of(id).unwrap_or(0));
            let prepared = prep::prep_close_session(&self.tree, &self.outstanding, id);
            self.propose(id, 0, prepared, None);
        }
        if self.now.mono_ms >= self.next_reap_ms {
            self.next_reap_ms = self.now.mono_ms + self.cfg.container_check_interval_ms as i64;
            self.reap_containers();
        }
    }

    /// The log is durable up to `up_to`: the persist that was asked for is done.
    pub fn persisted(&mut self, up_to: Zxid) {
        assert_eq!(self.persisting, Some(up_to), "a persist completes only after it was asked for, and reaches what was asked");
        assert!(up_to <= self.prepared, "the log holds only prepared transactions");
        self.persisting = None;
        self.durable = up_to;
        self.release_committed();
    }

    /// The log could not be written: the next [`Ready`] says stop.
    pub fn storage_failed(&mut self, why: String) {
        // The first failure is the one to report; later ones follow from it.
        self.out.fatal.get_or_insert(why);
    }

    /// Drops every outstanding change: prep sees the committed tree alone
    /// from now on (what a server that lost the leadership must do; the
    /// transactions already handed to the log still commit, or are cut
    /// from it, as consensus decides).
    pub fn drop_outstanding(&mut self) {
        self.outstanding.clear();
        debug_assert!(self.outstanding.is_empty());
    }

    /// A handshake: a new session (a createSession transaction) or a re-attach.
    fn connect(&mut self, origin: Origin, info: ConnectInfo) {
        let applied = self.tree.last_zxid();
        if info.last_zxid_seen > applied.raw() {
            eprintln!("keeper: refusing session request: client has seen zxid 0x{:x}, our last zxid is {applied}", info.last_zxid_seen);
            self.pending.push_back(Pending::Reply(Entry::Refused { origin }));
            return;
        }
        let timeout_ms = info.timeout_ms.max(self.cfg.min_session_timeout_ms).min(self.cfg.max_session_timeout_ms);
        debug_assert!(timeout_ms >= self.cfg.min_session_timeout_ms.min(self.cfg.max_session_timeout_ms));
        if info.session_id == 0 {
            let id = self.sessions.next_session_id();
            self.sessions.add(id, timeout_ms, self.now.mono_ms);
            self.owners.insert(id, origin);
            let created = Prepared { body: TxnBody::CreateSession { timeout_ms }, changes: Default::default() };
            self.propose(id, 0, created, Some(origin));
            return;
        }
        let id = info.session_id;
        // The session's current connection is dropped first, even if the password is wrong.
        if let Some(old) = self.owners.remove(&id)
            && old != origin
        {
            self.pending.push_back(Pending::Reply(Entry::Evict { origin: old }));
        }
        if info.passwd.as_ref() == session::password(id) && self.sessions.touch(id, self.now.mono_ms) {
            self.owners.insert(id, origin);
            self.pending.push_back(Pending::Reply(Entry::Attached { origin, session_id: id, timeout_ms }));
        } else {
            self.pending.push_back(Pending::Reply(Entry::Rejected { origin }));
        }
    }

    /// Stamps a prepared request with the next zxid and the time, records
    /// what it changed as outstanding, and hands it to the log.
    fn propose(&mut self, session_id: i64, cxid: i32, prepared: Prepared, origin: Option<Origin>) {
        let zxid = self.prepared.next();
        let txn = Txn { zxid, time_ms: self.now.wall_ms, session_id, cxid, body: prepared.body };
        if matches!(txn.body, TxnBody::CloseSession) {
            self.sessions.remove(session_id);
            self.owners.remove(&session_id);
        }
        self.outstanding.push(zxid, prepared.changes);
        self.out.append.push(txn.to_record());
        self.pending.push_back(Pending::Txn { txn, origin });
        self.prepared = zxid;
        debug_assert!(self.prepared > self.durable, "a new transaction is not yet durable");
    }

    /// Commits what is durable (applying it to the committed tree) and
    /// moves it, with the replies queued behind it, to the release.
    fn release_committed(&mut self) {
        let before = self.tree.last_zxid();
        while let Some(front) = self.pending.front() {
            if let Pending::Txn { txn, .. } = front
                && txn.zxid > self.durable
            {
                break;
            }
            match self.pending.pop_front().expect("front exists") {
                Pending::Txn { txn, origin } => {
                    let effect = self.tree.apply(&txn);
                    self.out.release.push(Entry::Txn { txn, origin, effect });
                }
                Pending::Reply(entry) => self.out.release.push(entry),
            }
        }
        if self.tree.last_zxid() > before {
            self.outstanding.trim(self.tree.last_zxid());
        }
        debug_assert!(self.tree.last_zxid() <= self.durable, "only durable transactions commit");
    }

    /// Deletes empty containers that once had children, and expired TTL
    /// nodes (ZooKeeper's ContainerManager), through the normal write path.
    /// Candidates come from the committed tree; a node that outstanding
    /// writes changed is left for the next run.
    fn reap_containers(&mut self) {
        let per_run = (self.cfg.container_max_per_minute as u64 * self.cfg.container_check_interval_ms / 60_000).max(1) as usize;
        let mut candidates: Vec<String> = Vec::new();
        for path in self.tree.containers() {
            let node = self.tree.get(path).expect("indexed containers exist");
            if node.children.is_empty() && node.persisted.child_creates > 0 {
                candidates.push(path.to_string());
            }
        }
        for path in self.tree.ttls() {
            let node = self.tree.get(path).expect("indexed TTL nodes exist");
            if let NodeKind::Ttl { ttl_ms } = node.kind()
                && node.children.is_empty()
                && self.now.wall_ms - node.persisted.mtime > ttl_ms
            {
                candidates.push(path.to_string());
            }
        }
        candidates.retain(|path| self.outstanding.get(path).is_none());
        candidates.sort();
        let before = self.prepared;
        for path in candidates.into_iter().take(per_run) {
            let req = Request::DeleteContainer { path };
            let ctx = PrepContext { session_id: 0, ids: &[], extended_types: self.cfg.extended_types };
            let prepared = prep::prep(&self.tree, &self.outstanding, OpCode::DeleteContainer, &req, &ctx);
            self.propose(0, 0, prepared, None);
        }
        assert!(self.prepared.raw() - before.raw() <= per_run as i64, "the reaper deletes at most {per_run} nodes a run");
    }

    /// One shard's part of a report; the last part completes it.
    fn admin_part(&mut self, token: u64, part: ShardReport) {
        let Some(g) = self.gathers.get_mut(&token) else {
            return;
        };
        assert!(g.remaining > 0, "a finished report takes no more parts");
        g.parts.push(part);
        g.remaining -= 1;
        if g.remaining > 0 {
            return;
        }
        let g = self.gathers.remove(&token).expect("present above");
        debug_assert_eq!(g.parts.len(), self.shard_count, "every shard answered");
        let (mono, wall) = (self.now.mono_ms, self.now.wall_ms);
        let report = AdminReport {
            last_zxid: self.tree.last_zxid().raw(),
            node_count: self.tree.node_count() + 1,
            approximate_data_size: self.tree.approximate_data_size(),
            ephemerals: self.tree.ephemerals().iter().map(|(s, paths)| (*s, paths.iter().map(|p| p.to_string()).collect())).collect(),
            sessions: self.sessions.expiries().into_iter().map(|(id, timeout, at)| (id, timeout, wall + (at - mono))).collect(),
            shards: g.parts,
            uptime_ms: (mono - self.started.mono_ms) as u64,
        };
        self.out.messages.push((g.origin.shard, ToShard::AdminReply { conn: g.origin.conn, report: Arc::new(report) }));
    }
}
