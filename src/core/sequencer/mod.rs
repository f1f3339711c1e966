//! The sequencer: the broadcast core's logic as a pure state machine, the
//! one place where writes are ordered. It holds no file, socket, clock,
//! task or process handle; a driver (`runtime::broadcast`, a test, or the
//! simulator) feeds it inputs and carries out its outputs, the way raft-rs's
//! `RawNode` is driven. The raft node lives inside it: a standalone server
//! is an ensemble of one on exactly this path.
//!
//! On the leader it prepares each write against the committed tree plus
//! the outstanding changes of writes prepared before it ([`Outstanding`]),
//! stamps zxid and time, and proposes it to raft. A follower forwards its
//! clients' writes to the leader. When raft commits an entry (durable on a
//! quorum), every server applies it to its committed tree, which works out
//! its effect (the reply, the watch triggers, the node versions every other
//! tree installs), and releases it to its shards; the server whose client
//! asked replies. It also owns sessions (the leader expires them),
//! handshakes, sync (a raft ReadIndex), the container and TTL reaper's
//! decisions, and gathering four-letter-word reports.
//!
//! A new leader prepares nothing until every entry in its log from before
//! its term has committed (its own no-op entry commits them): prep then
//! reads committed state plus its own outstanding changes only, so there is
//! no outstanding state to rebuild from an uncommitted suffix. Writes that
//! arrive meanwhile wait, in order, and so do writes while no leader is
//! known.
//!
//! # Inputs
//! - [`Sequencer::on_message`]: a shard's message, with the time;
//! - [`Sequencer::on_peer`]: another server's message;
//! - [`Sequencer::tick`]: time passes (raft's clock, session expiry, the reaper);
//! - [`Sequencer::persisted`]: a persist the sequencer asked for is durable;
//! - [`Sequencer::storage_failed`]: the log could not be written.
//!
//! # Outputs: [`Ready`], and the rules for acting on one
//! After feeding inputs, the driver takes a [`Ready`] with
//! [`Sequencer::ready`] and acts on it in this order:
//! 1. `fatal`: if set, stop at once and act on nothing else, so no reply
//!    ever leaves for a write that was not logged.
//! 2. `truncate_after`: cut the log after this index (the leader replaced
//!    an uncommitted suffix of it).
//! 3. `append`: append every entry to the log, in order; their indexes
//!    continue the log.
//! 4. `persist`: if set, make everything appended durable, with the hard
//!    state first if it carries one, then report [`Sequencer::persisted`]
//!    with its token. The sequencer asks for one persist at a time; writes
//!    keep being prepared and appended while it runs (pipelining).
//! 5. `peers`: send each message to its server (none of them needs
//!    anything persisted that is not already durable).
//! 6. `release`: hand the entries to every shard, in order, after raising
//!    the cross-shard read barrier to [`Ready::last_released_zxid`]. Only
//!    committed transactions are released, in zxid order; a reply that
//!    needs no transaction (sync, re-attach, refusals) follows every entry
//!    this server had when it was asked.
//! 7. `messages`: send each to its shard (four-letter-word collection).
//!
//! A failed call leaves the state untouched: a write that fails its checks
//! is not a failed call; it becomes a transaction that fails (it takes a
//! zxid, as in ZooKeeper).

mod reports;
mod writes;

#[cfg(test)]
mod tests;

use crate::config::Config;
use crate::core::consensus::store::RaftStore;
use crate::core::consensus::wire::WireMessage;
use crate::core::consensus::{self, LogPosition};
use crate::core::messages::{BroadcastStats, Entry, Origin, PeerMessage, ServeMode, ShardId, ToBroadcast, ToShard};
use crate::core::outstanding::Outstanding;
use crate::core::session::{self, SessionTracker};
use crate::core::tree::DataTree;
use crate::core::txn::{Txn, TxnBody};
use crate::core::zxid::Zxid;
use ahash::AHashMap as HashMap;
use raft::prelude::{ConfState, Entry as RaftEntry, EntryType, HardState, Message, MessageType};
use raft::{RawNode, StateRole, Storage};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// A change of at least this much between the wall clock and the monotonic
/// clock is a jump of the wall clock, and is logged (ms).
const WALL_CLOCK_JUMP_MS: i64 = 1000;
/// A handshake forwarded to the leader and unanswered this long is sent again...
const HANDSHAKE_RESEND_MS: i64 = 1000;
/// ...until this long after it first was: its client has long given up
/// (clients wait a fraction of their session timeout, at most 40 s by default).
const HANDSHAKE_GIVE_UP_MS: i64 = 60_000;

/// A client's handshake (createSession or re-attach) forwarded to the
/// leader, and when it was last sent.
#[derive(Debug, Clone)]
struct Handshake {
    msg: PeerMessage,
    first_sent_ms: i64,
    sent_at_ms: i64,
}

impl Handshake {
    fn new(msg: PeerMessage, now_ms: i64) -> Handshake {
        Handshake { msg, first_sent_ms: now_ms, sent_at_ms: now_ms }
    }

    /// The message, to send again now.
    fn sent(&mut self, now_ms: i64) -> PeerMessage {
        self.sent_at_ms = now_ms;
        self.msg.clone()
    }
}

/// How long a server without a leader keeps its clients' connections,
/// holding their writes, before it closes them (ms): the longest election
/// timeout, so that an election does not disconnect anyone.
pub(crate) const LEADERLESS_GRACE_MS: i64 = 2 * consensus::ELECTION_TICKS as i64 * consensus::RAFT_TICK_MS;

/// The least time without a leader before read-only mode starts (ms).
const READ_ONLY_DELAY_MIN_MS: i64 = 2000;

/// The time, as the driver read it: monotonic milliseconds (since any
/// fixed point; raft's clock, session expiry and the reaper's schedule) and
/// wall-clock milliseconds since the Unix epoch (transaction times, TTLs,
/// reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub mono_ms: i64,
    pub wall_ms: i64,
}

/// A persist to run: everything appended, and the hard state first if set.
#[derive(Debug, Clone, PartialEq)]
pub struct Persist {
    /// What to report back to [`Sequencer::persisted`].
    pub token: u64,
    /// A new term or vote, durable before anything else of this persist.
    pub hard_state: Option<HardState>,
}

/// A snapshot for a follower that needs entries this leader no longer
/// keeps: write `tree` (at `position`) as a snapshot file, send the file to
/// server `to` in chunks, then `message` (raft's, which installs it), then
/// report [`Sequencer::snapshot_sent`].
#[derive(Debug)]
pub struct SnapshotSend {
    pub to: u64,
    pub tree: DataTree,
    pub position: LogPosition,
    pub message: PeerMessage,
}

/// What the driver must do, in field order (see the module documentation).
#[derive(Debug, Default)]
pub struct Ready {
    /// Stop now: storage failed under the acknowledged-write guarantee.
    pub fatal: Option<String>,
    /// Load the snapshot file received for this position and hand its tree
    /// to [`Sequencer::snapshot_installed`], with the log emptied to start
    /// after it, before anything else of this Ready.
    pub install_snapshot: Option<LogPosition>,
    /// Cut the log after this index before appending.
    pub truncate_after: Option<u64>,
    /// raft entries to append to the log, in index order.
    pub append: Vec<RaftEntry>,
    /// Start this persist.
    pub persist: Option<Persist>,
    /// Messages for other servers of the ensemble, by server id.
    pub peers: Vec<(u64, PeerMessage)>,
    /// Committed entries for every shard, in order.
    pub release: Vec<Entry>,
    /// Messages for single shards.
    pub messages: Vec<(ShardId, ToShard)>,
    /// Clients are to be served this way from now on.
    pub serving: Option<ServeMode>,
    /// Snapshots to send to followers.
    pub send_snapshots: Vec<SnapshotSend>,
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.fatal.is_none()
            && self.install_snapshot.is_none()
            && self.truncate_after.is_none()
            && self.append.is_empty()
            && self.persist.is_none()
            && self.peers.is_empty()
            && self.release.is_empty()
            && self.messages.is_empty()
            && self.serving.is_none()
            && self.send_snapshots.is_empty()
    }

    /// The zxid of the last transaction (or reset tree) in `release`.
    pub fn last_released_zxid(&self) -> Option<Zxid> {
        self.release.iter().rev().find_map(|e| match e {
            Entry::Txn { txn, .. } => Some(txn.zxid),
            Entry::Reset { tree, .. } => Some(tree.last_zxid()),
            _ => None,
        })
    }
}

/// What recovery hands the sequencer: the committed tree and the raft log.
pub struct Recovered {
    /// The tree, with every entry up to `applied` applied.
    pub tree: DataTree,
    /// The raft position the log starts after (a snapshot's).
    pub base: LogPosition,
    /// Every raft entry after `base`, applied or not, in order.
    pub entries: Vec<RaftEntry>,
    /// The index of the last entry applied to `tree`.
    pub applied: u64,
    /// The hard state last made durable.
    pub hard_state: HardState,
}

/// Where a write goes now.
enum Route {
    /// This server leads and may prepare.
    Prepare,
    /// Forward it to this leader.
    Forward(u64),
    /// Keep it until there is a leader that may prepare.
    Hold,
}

/// The lengths of a sequencer's queues and maps that grow with requests,
/// connections or sessions (see [`Sequencer::queue_lengths`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueLengths {
    pub held: usize,
    pub proposed: usize,
    pub origins: usize,
    pub syncs: usize,
    pub replies: usize,
    pub unpersisted: usize,
    pub handshakes: usize,
    pub owners: usize,
    pub session_servers: usize,
    pub raft_messages: usize,
    pub raft_unstable: usize,
    pub raft_read_states: usize,
}

/// A sync waiting for its ReadIndex.
#[derive(Debug)]
struct PendingSync {
    origin: Origin,
    cxid: i32,
    path: Option<String>,
}

/// The broadcast core's state: see the module documentation.
pub struct Sequencer {
    cfg: Arc<Config>,
    shard_count: usize,
    my_id: u64,
    /// The committed state: every committed transaction applied.
    tree: DataTree,
    /// What prepared, uncommitted transactions changed, for prep to see.
    outstanding: Outstanding,
    raft: RawNode<RaftStore>,
    /// This server's role and the leader it knows, as raft last said.
    role: StateRole,
    leader: u64,
    /// As leader: prep waits until the commit index reaches this (every
    /// entry from before this term committed).
    lead_from: Option<u64>,
    /// The zxid of the last transaction this server prepared (as leader).
    prepared: Zxid,
    /// Transactions this leader proposed, not yet committed: (index, term, txn).
    proposed: VecDeque<(u64, u64, Txn)>,
    /// Writes waiting for a leader that may prepare, in arrival order.
    held: VecDeque<writes::Held>,
    /// Where the replies of this server's clients' writes go, by (session, xid).
    origins: HashMap<(i64, i32), Origin>,
    /// Syncs waiting for their ReadIndex, by request token.
    syncs: HashMap<u64, PendingSync>,
    next_sync: u64,
    /// Replies that need no transaction, each released once this server
    /// has applied the index it names, in order.
    replies: VecDeque<(u64, Entry)>,
    /// The index of the last entry applied to the tree.
    applied: u64,
    /// This server started with no data in an ensemble (it forgot what it
    /// voted and stored, so its vote could elect a server that misses
    /// committed entries). Until it has caught up with a leader it votes
    /// only after hearing from its peers for an election timeout, and only
    /// for a candidate whose log reaches the furthest index it has seen.
    catching_up: bool,
    /// The furthest log index any peer's message showed (while catching up).
    best_seen_index: u64,
    /// A snapshot from the leader being installed: nothing else moves until it is.
    installing: Option<LogPosition>,
    /// raft readies appended but not yet durable: their numbers, and the
    /// messages that may only leave once they are.
    unpersisted: VecDeque<(u64, Vec<Message>)>,
    /// The persist in flight (its token).
    persisting: Option<u64>,
    /// A term or vote not yet durable, for the next persist.
    hard_state_due: Option<HardState>,
    /// The term and vote last handed to a persist.
    hard_state_sent: (u64, u64),
    /// Sessions (authoritative on the leader) and their expiry.
    sessions: SessionTracker,
    /// The connection each session is attached to, on this server.
    owners: HashMap<i64, Origin>,
    /// On the leader: the server each session is attached to.
    session_servers: HashMap<i64, u64>,
    reports: reports::Reports,
    /// How clients are served, and since when no leader has been known (monotonic ms).
    serve_mode: ServeMode,
    /// Handshakes sent to the leader and not yet answered, by connection:
    /// sent again to each new leader (a leader that stopped or failed may
    /// never answer them; a second copy is harmless).
    handshakes: BTreeMap<(ShardId, u64), Handshake>,
    /// The server the leader said it hands its leadership to (it is stopping).
    handover_to: Option<u64>,
    /// This server handed its leadership over (it is stopping): writes it
    /// held are passed on to the new leader.
    handed_over: bool,
    no_leader_since_ms: i64,
    /// When each other server was last heard from (monotonic ms).
    heard_from: HashMap<u64, i64>,
    /// Set while this server leads.
    leading: Option<reports::Leadership>,
    started: Clock,
    now: Clock,
    /// When raft ticks next and the reaper runs next (monotonic ms).
    next_raft_tick_ms: i64,
    /// raft ticks so far.
    raft_ticks: u64,
    next_reap_ms: i64,
    /// Outputs gathered since the last `ready`.
    out: Ready,
    /// Counters for mntr and /metrics.
    stats: BroadcastStats,
    /// Entries appended since the last persist was asked for.
    appended_unpersisted: u64,
}

impl Sequencer {
    /// A sequencer starting from what recovery found, serving `shard_count` shards.
    pub fn new(cfg: Arc<Config>, recovered: Recovered, shard_count: usize, now: Clock) -> Sequencer {
        assert!(shard_count > 0, "at least one shard");
        let Recovered { tree, base, entries, applied, mut hard_state } = recovered;
        let my_id = cfg.my_id as u64;
        let (voters, learners) = consensus::membership(&cfg);
        let only_voter = voters == [my_id];
        if only_voter {
            // Its own durable entries are committed (recovery applied them all).
            hard_state.commit = hard_state.commit.max(applied);
        }
        // A snapshot is of applied entries, which can run ahead of the
        // last hard state made durable; what it holds is committed.
        hard_state.commit = hard_state.commit.max(base.index);
        assert!(applied <= hard_state.commit, "applied entries are committed");
        let mut store = RaftStore::new(ConfState::from((voters, learners)), hard_state.clone(), base.index, base.term);
        store.append(&entries);
        // Recovery applied entries after the base: a snapshot raft asks the
        // store for stands there (found by the simulator, seed 289: a
        // restarted server that led, asked for a snapshot before it applied
        // anything new, offered an empty one and raft panicked).
        let applied_term = entries.iter().find(|e| e.index == applied).map_or(base.term, |e| e.term);
        store.set_applied(applied, applied_term);
        let raft_config = raft::Config {
            id: my_id,
            election_tick: consensus::ELECTION_TICKS,
            heartbeat_tick: consensus::HEARTBEAT_TICKS,
            applied,
            max_size_per_msg: consensus::MESSAGE_BYTES_MAX,
            max_inflight_msgs: consensus::INFLIGHT_MESSAGES_MAX,
            check_quorum: true,
            pre_vote: true,
            min_election_tick: cfg.fixed_election_ticks.unwrap_or(0),
            max_election_tick: cfg.fixed_election_ticks.map_or(0, |t| t + 1),
            ..Default::default()
        };
        raft_config.validate().expect("keeper's raft settings are valid");
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut raft = RawNode::new(&raft_config, store, &logger).expect("a raft node starts on a valid store");
        if only_voter {
            raft.campaign().expect("the only voter can stand for election");
        }
        let started_empty = !only_voter && base.index == 0 && entries.is_empty() && hard_state == HardState::default() && tree.last_zxid() == Zxid::ZERO;
        let mut sessions = SessionTracker::new(cfg.tick_ms as i64, session::first_session_id(cfg.my_id, now.wall_ms));
        for (&id, &timeout) in tree.sessions() {
            sessions.add(id, timeout, now.mono_ms);
        }
        let next_reap_ms = now.mono_ms + cfg.container_check_interval_ms as i64;
        if started_empty {
            tracing::info!(
                "server {my_id} starts with no data: until it has caught up with a leader it votes only after listening for an election timeout, and only for a candidate as far along as anything it has seen"
            );
        }
        Sequencer {
            catching_up: started_empty,
            best_seen_index: 0,
            installing: None,
            prepared: tree.last_zxid(),
            hard_state_sent: (hard_state.term, hard_state.vote),
            cfg,
            shard_count,
            my_id,
            tree,
            outstanding: Outstanding::default(),
            raft,
            role: StateRole::Follower,
            leader: 0,
            lead_from: None,
            proposed: VecDeque::new(),
            held: VecDeque::new(),
            origins: HashMap::new(),
            syncs: HashMap::new(),
            next_sync: 1,
            replies: VecDeque::new(),
            applied,
            unpersisted: VecDeque::new(),
            persisting: None,
            hard_state_due: None,
            sessions,
            owners: HashMap::new(),
            session_servers: HashMap::new(),
            reports: reports::Reports::default(),
            heard_from: HashMap::new(),
            leading: None,
            serve_mode: ServeMode::Closed,
            handshakes: BTreeMap::new(),
            handover_to: None,
            handed_over: false,
            no_leader_since_ms: now.mono_ms,
            started: now,
            now,
            next_raft_tick_ms: now.mono_ms + consensus::RAFT_TICK_MS,
            raft_ticks: 0,
            next_reap_ms,
            out: Ready::default(),
            // A member of an ensemble starts without a leader, as ZooKeeper's peer starts LOOKING.
            stats: BroadcastStats { elections: u64::from(!only_voter), ..BroadcastStats::default() },
            appended_unpersisted: 0,
        }
    }

    /// The zxid of the last transaction this server applied.
    pub fn committed_zxid(&self) -> Zxid {
        self.tree.last_zxid()
    }

    /// The committed tree.
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The index of the last entry applied.
    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    /// How long each of its queues is now (the simulator holds them to bounds).
    pub fn queue_lengths(&self) -> QueueLengths {
        QueueLengths {
            held: self.held.len(),
            proposed: self.proposed.len(),
            origins: self.origins.len(),
            syncs: self.syncs.len(),
            replies: self.replies.len(),
            unpersisted: self.unpersisted.len(),
            handshakes: self.handshakes.len(),
            owners: self.owners.len(),
            session_servers: self.session_servers.len(),
            raft_messages: self.raft.raft.msgs.len(),
            raft_unstable: self.raft.raft.raft_log.unstable.entries.len(),
            raft_read_states: self.raft.raft.read_states.len(),
        }
    }

    /// How clients are served now.
    pub fn serve_mode(&self) -> ServeMode {
        self.serve_mode
    }

    /// How long a server with `readonlymode.enabled` goes without a leader
    /// before it serves read-only clients: ZooKeeper's `max(2000, tickTime)`,
    /// so that an ordinary election does not send every client to read-only
    /// mode and back.
    fn read_only_delay_ms(&self) -> i64 {
        (self.cfg.tick_ms as i64).max(READ_ONLY_DELAY_MIN_MS)
    }

    /// Clients are to be served this way from now on. A stopping server
    /// stays draining.
    fn set_serve_mode(&mut self, mode: ServeMode) {
        if mode == self.serve_mode || self.serve_mode == ServeMode::Draining {
            return;
        }
        if mode == ServeMode::ReadOnly {
            tracing::info!(
                "server {} has had no leader for {} ms: serving clients that accept a read-only server (readonlymode.enabled)",
                self.my_id,
                self.now.mono_ms - self.no_leader_since_ms
            );
        }
        debug_assert!(mode != ServeMode::ReadWrite || self.leader != 0, "clients are served writes only under a leader");
        self.serve_mode = mode;
        self.out.serving = Some(mode);
    }

    /// Asked to stop (SIGTERM): clients are drained, and a leader hands its
    /// leadership to the voter furthest along, so that writes go on
    /// without waiting for an election timeout.
    pub fn begin_stop(&mut self, now: Clock) {
        self.advance(now);
        self.set_serve_mode(ServeMode::Draining);
        let (voters, learners) = consensus::membership(&self.cfg);
        if self.role != StateRole::Leader || voters.len() == 1 {
            return;
        }
        let prs = self.raft.raft.prs();
        let best = voters.iter().copied().filter(|&id| id != self.my_id).max_by_key(|&id| prs.get(id).map_or(0, |p| p.matched));
        if let Some(to) = best {
            tracing::info!("server {} is stopping: handing leadership to server {to}", self.my_id);
            self.handover_to = Some(to);
            self.handed_over = true;
            for id in voters.iter().chain(&learners).copied().filter(|&id| id != self.my_id) {
                self.out.peers.push((id, PeerMessage::Handover { to }));
            }
            self.raft.transfer_leader(to);
        }
    }

    /// Whether a stopping server may exit now: it does not lead an
    /// ensemble, and no client of its waits for a reply.
    pub fn may_stop(&self) -> bool {
        let (voters, _) = consensus::membership(&self.cfg);
        let leads_others = self.role == StateRole::Leader && voters.len() > 1;
        !leads_others && self.origins.is_empty() && self.syncs.is_empty() && self.held.is_empty()
    }

    /// raft's current term on this server.
    pub fn term(&self) -> u64 {
        self.raft.raft.term
    }

    /// The leader this server knows (0 for none), and whether it is this server.
    pub fn leader(&self) -> (u64, bool) {
        (self.leader, self.role == StateRole::Leader)
    }

    /// ZooKeeper's name for this server's role: `standalone`, `leader`,
    /// `follower` or `observer` (what `srvr` shows).
    pub fn mode(&self) -> &'static str {
        let (voters, learners) = consensus::membership(&self.cfg);
        if self.serve_mode == ServeMode::ReadOnly {
            "read-only"
        } else if learners.contains(&self.my_id) {
            "observer"
        } else if voters.len() == 1 && learners.is_empty() {
            "standalone"
        } else if self.role == StateRole::Leader {
            "leader"
        } else {
            "follower"
        }
    }

    /// Takes the outputs gathered since the last call.
    pub fn ready(&mut self) -> Ready {
        if self.installing.is_none() {
            self.drive_raft();
        }
        if self.persisting.is_none()
            && let Some(&(number, _)) = self.unpersisted.back()
        {
            self.persisting = Some(number);
            self.out.persist = Some(Persist { token: number, hard_state: self.hard_state_due.take() });
            if self.appended_unpersisted > 0 {
                self.stats.batch_sizes.saturating_record(std::mem::take(&mut self.appended_unpersisted));
            }
        }
        if self.installing.is_none() {
            // While a snapshot installs, `applied` is its index but the tree
            // (and the shards') is older: a reply released now would be
            // answered from the old state (found by the simulator, seed 10051).
            self.release_replies();
        }
        debug_assert!(self.out.append.windows(2).all(|w| w[1].index == w[0].index + 1), "appends are contiguous");
        debug_assert!(self.out.peers.iter().all(|(to, _)| *to != self.my_id), "no message goes to this server itself: there is no such link");
        std::mem::take(&mut self.out)
    }

    /// Advances the time the sequencer stamps, ticks and expires by.
    fn advance(&mut self, now: Clock) {
        assert!(now.mono_ms >= self.now.mono_ms, "monotonic time never goes back: {} after {}", now.mono_ms, self.now.mono_ms);
        let jump = (now.wall_ms - now.mono_ms) - (self.now.wall_ms - self.now.mono_ms);
        if jump.abs() >= WALL_CLOCK_JUMP_MS {
            tracing::info!(
                "server {}: the wall clock jumped {jump:+} ms against the monotonic clock; session expiry and raft's timers follow the monotonic clock and are unaffected, transaction times and TTL expiry follow the wall clock",
                self.my_id
            );
        }
        self.now = now;
    }

    /// A message from a shard.
    pub fn on_message(&mut self, msg: ToBroadcast, now: Clock) {
        self.advance(now);
        self.handle_message(msg);
    }

    fn handle_message(&mut self, msg: ToBroadcast) {
        match msg {
            ToBroadcast::Write { .. } => self.route_write(msg),
            ToBroadcast::Sync { origin, cxid, path } => {
                #[cfg(test)]
                if crate::core::planted::planted(crate::core::planted::Bug::SyncBeforeCatchingUp) {
                    return self.replies.push_back((0, Entry::Synced { origin, cxid, path }));
                }
                let token = self.next_sync;
                self.next_sync += 1;
                self.syncs.insert(token, PendingSync { origin, cxid, path });
                self.raft.read_index(token.to_le_bytes().to_vec());
            }
            ToBroadcast::Connect { origin, info } => self.connect(origin, info),
            ToBroadcast::Touch(ids) => self.touch(ids),
            ToBroadcast::Admin { origin, query } => self.start_report(origin, query),
            ToBroadcast::AdminPart { token, part } => self.report_part(token, *part),
        }
    }

    /// A message from server `from`.
    pub fn on_peer(&mut self, from: u64, msg: PeerMessage, now: Clock) {
        self.advance(now);
        self.heard_from.insert(from, self.now.mono_ms);
        self.handle_peer(from, msg);
    }

    /// Server `id`'s process is gone. A follower whose leader it was ends
    /// its leader's lease now and stands for election at its next tick,
    /// instead of waiting out the election timeout. The others hear of the
    /// same loss within about a tick, so by then they grant votes too, and
    /// the one whose log reaches furthest wins as usual (pre-vote still
    /// asks first, so a leader that is in fact alive is not disturbed). A
    /// server still catching up, or loading a snapshot, leaves it to the others.
    pub fn peer_gone(&mut self, id: u64, now: Clock) {
        self.advance(now);
        if self.role == StateRole::Follower && self.leader == id && self.raft.raft.promotable() && !self.catching_up && self.snapshot_applied_in_raft() {
            tracing::info!("server {} stands for election at its next tick: its leader, server {id}, is gone", self.my_id);
            let raft = &mut self.raft.raft;
            raft.election_elapsed = raft.election_elapsed.max(raft.randomized_election_timeout() - 1).max(raft.election_timeout());
        }
    }

    fn handle_peer(&mut self, from: u64, msg: PeerMessage) {
        match msg {
            PeerMessage::Raft(wire) => self.step_raft(from, &wire),
            PeerMessage::Forward { server, session_id, cxid, op, request, ids, malformed } => {
                self.forwarded(from, server, session_id, cxid, op, &request, ids, malformed)
            }
            PeerMessage::CreateSession { server, session_id, timeout_ms } => self.create_session(from, server, session_id, timeout_ms),
            PeerMessage::Revalidate { server, session_id, timeout_ms, shard, conn } => self.revalidate(from, server, session_id, timeout_ms, shard, conn),
            PeerMessage::Revalidated { session_id, timeout_ms, shard, conn, alive } => {
                let origin = Origin { shard: shard as ShardId, conn };
                if self.handshakes.remove(&(origin.shard, origin.conn)).is_some() {
                    self.revalidated(session_id, timeout_ms, origin, alive)
                }
            }
            PeerMessage::Touch(ids) => {
                for id in ids {
                    self.sessions.touch(id, self.now.mono_ms);
                }
            }
            PeerMessage::StartedEmpty => self.forget_log_of(from),
            PeerMessage::Handover { to } if from == self.leader => self.handover_to = Some(to),
            PeerMessage::Handover { .. } => {}
            // Snapshot files are the driver's: it writes them to disk as they come.
            PeerMessage::SnapshotChunk { .. } => debug_assert!(false, "snapshot chunks go to the driver"),
        }
    }

    /// Tells every other server that this one started empty (again every
    /// election timeout while it catches up: a message may be lost).
    fn announce_started_empty(&mut self) {
        let others: Vec<u64> = self.cfg.servers.iter().map(|s| s.id as u64).filter(|id| *id != self.my_id).collect();
        for id in others {
            self.out.peers.push((id, PeerMessage::StartedEmpty));
        }
    }

    /// As leader: server `from` lost its log (it started empty); probe it
    /// from the start instead of assuming it holds what it acknowledged.
    fn forget_log_of(&mut self, from: u64) {
        if self.role != StateRole::Leader {
            return;
        }
        if let Some(progress) = self.raft.raft.mut_prs().get_mut(from)
            && progress.matched > 0
        {
            tracing::info!("server {from} started empty; sending it the log from the start");
            progress.matched = 0;
            // A snapshot in flight went to the process that is gone: probe
            // from the start rather than from after that snapshot.
            progress.become_probe();
            progress.next_idx = 1;
        }
    }

    /// Hands a peer's raft message to the raft node; a malformed one is dropped.
    fn step_raft(&mut self, from: u64, wire: &WireMessage) {
        let mut msg = match wire.to_raft() {
            Ok(m) if m.from == from && m.to == self.my_id => m,
            Ok(m) => return tracing::warn!("dropping a raft message from server {from} that says it is from {} to {}", m.from, m.to),
            Err(e) => return tracing::warn!("dropping a raft message from server {from}: {}", e.0),
        };
        let votes = matches!(msg.msg_type, MessageType::MsgRequestVote | MessageType::MsgRequestPreVote);
        if self.catching_up {
            let listening = self.now.mono_ms - self.started.mono_ms < consensus::ELECTION_TICKS as i64 * consensus::RAFT_TICK_MS;
            if votes && (listening || msg.index < self.best_seen_index) {
                return;
            }
            self.best_seen_index = self.best_seen_index.max(msg.index).max(msg.commit);
        }
        let last = self.raft.raft.raft_log.last_index();
        if msg.msg_type == MessageType::MsgHeartbeat && msg.commit > last {
            // A leader that has not yet heard that this server started empty.
            msg.commit = last;
        }
        if let Err(e) = self.raft.step(msg) {
            tracing::warn!("raft refused a message from server {from}: {e}");
        }
    }

    /// Time passes: raft ticks, sessions whose time is up expire (on the
    /// leader), and the reaper runs when due.
    pub fn tick(&mut self, now: Clock) {
        self.advance(now);
        while self.next_raft_tick_ms <= self.now.mono_ms {
            if self.snapshot_applied_in_raft() {
                self.raft.tick();
            }
            self.next_raft_tick_ms += consensus::RAFT_TICK_MS;
            self.raft_ticks += 1;
            if self.catching_up && self.raft_ticks % consensus::ELECTION_TICKS as u64 == 1 {
                self.announce_started_empty();
            }
        }
        self.resend_stale_handshakes();
        let leaderless_ms = self.now.mono_ms - self.no_leader_since_ms;
        if self.leader == 0 && self.serve_mode == ServeMode::ReadWrite && leaderless_ms >= LEADERLESS_GRACE_MS {
            self.set_serve_mode(ServeMode::Closed);
        }
        if self.serve_mode == ServeMode::Closed && self.cfg.read_only_mode && leaderless_ms >= self.read_only_delay_ms() {
            self.set_serve_mode(ServeMode::ReadOnly);
        }
        if !self.may_prepare() {
            return;
        }
        for id in self.sessions.expire(self.now.mono_ms) {
            self.stats.sessions_expired += 1;
            tracing::info!("expiring session 0x{id:x}, timeout of {} ms exceeded", self.sessions.timeout_of(id).unwrap_or(0));
            let prepared = crate::core::prep::prep_close_session(&self.tree, &self.outstanding, id);
            self.propose(id, 0, prepared, None);
        }
        if self.now.mono_ms >= self.next_reap_ms {
            self.next_reap_ms = self.now.mono_ms + self.cfg.container_check_interval_ms as i64;
            self.reap_containers();
        }
    }

    /// Ready `number` waits for a persist, with the messages that may only
    /// leave after it. Readies not covered by the persist in flight wait
    /// together (the next persist covers them all), so at most two items
    /// wait: the persist in flight's and the next one's.
    fn await_persist(&mut self, number: u64, messages: Vec<Message>) {
        match self.unpersisted.back_mut() {
            Some((last, waiting)) if self.persisting.is_none_or(|token| *last > token) => {
                *last = number;
                waiting.extend(messages);
            }
            _ => self.unpersisted.push_back((number, messages)),
        }
        debug_assert!(self.unpersisted.len() <= 2, "the persist in flight's readies and the next persist's");
    }

    /// The persist with this token is durable.
    pub fn persisted(&mut self, token: u64) {
        assert_eq!(self.persisting, Some(token), "a persist completes only after it was asked for");
        self.persisting = None;
        self.raft.on_persist_ready(token);
        self.tell_raft_applied();
        while self.unpersisted.front().is_some_and(|(number, _)| *number <= token) {
            let (_, messages) = self.unpersisted.pop_front().expect("front exists");
            self.send_raft(messages);
        }
    }

    /// The driver's persist took `micros` (for mntr's fsynctime).
    pub fn sync_took(&mut self, micros: u64) {
        self.stats.sync_micros.saturating_record(micros.max(1));
    }

    /// The log could not be written: the next [`Ready`] says stop.
    pub fn storage_failed(&mut self, why: String) {
        // The first failure is the one to report; later ones follow from it.
        self.out.fatal.get_or_insert(why);
    }

    /// Drops every outstanding change: prep sees the committed tree alone
    /// from now on (what a server that lost the leadership must do; the
    /// transactions already in the log commit, or are cut from it, as raft
    /// decides).
    pub fn drop_outstanding(&mut self) {
        self.outstanding.clear();
        self.proposed.clear();
        debug_assert!(self.outstanding.is_empty());
    }

    /// Queues raft messages for their servers. A snapshot message goes
    /// with a copy of the committed tree, for the driver to send ahead of it.
    fn send_raft(&mut self, messages: Vec<Message>) {
        for mut m in messages {
            debug_assert_ne!(m.to, self.my_id, "raft never sends to itself");
            if m.msg_type == MessageType::MsgSnapshot {
                self.stats.snapshots_sent += 1;
                // The tree is where the sequencer applied up to now; say so.
                let term = self.raft.store().term(self.applied).expect("the applied entry's term is kept");
                let meta = m.mut_snapshot().mut_metadata();
                (meta.index, meta.term) = (self.applied, term);
                let position = LogPosition { index: self.applied, term };
                tracing::info!("server {} is behind what this leader keeps: sending it a snapshot at index {}", m.to, position.index);
                let message = PeerMessage::Raft(Box::new(WireMessage::from(&m)));
                self.out.send_snapshots.push(SnapshotSend { to: m.to, tree: self.tree.clone(), position, message });
                continue;
            }
            self.out.peers.push((m.to, PeerMessage::Raft(Box::new(WireMessage::from(&m)))));
        }
    }

    /// raft keeps its own applied index (elections check the entries after
    /// it), which may not pass what it knows durable (a snapshot installed
    /// ahead of its persist).
    fn tell_raft_applied(&mut self) {
        let log = &self.raft.raft.raft_log;
        let to = self.applied.min(log.persisted).min(log.committed);
        if to > log.applied {
            self.raft.advance_apply_to(to);
        }
    }

    /// Whether raft knows that a snapshot this server took is applied. Until
    /// then its clock stands still: an election would read the entries
    /// after raft's old applied index, which the snapshot replaced.
    fn snapshot_applied_in_raft(&self) -> bool {
        self.raft.raft.raft_log.applied + 1 >= self.raft.store().first()
    }

    /// A snapshot for server `to` was sent (or its sending failed).
    pub fn snapshot_sent(&mut self, to: u64, ok: bool) {
        let status = if ok { raft::SnapshotStatus::Finish } else { raft::SnapshotStatus::Failure };
        self.raft.report_snapshot(to, status);
    }

    /// The snapshot the leader sent is loaded: it replaces the committed
    /// state, and every core takes the new tree.
    pub fn snapshot_installed(&mut self, tree: DataTree) {
        let position = self.installing.take().expect("an install was asked for");
        assert_eq!(self.applied, position.index, "the snapshot is where raft moved this server");
        tracing::info!("server {} installed a snapshot at index {} (zxid {})", self.my_id, position.index, tree.last_zxid());
        self.tree = tree;
        self.outstanding.clear();
        self.proposed.clear();
        self.drop_pending_requests();
        self.sessions.rearm(self.tree.sessions().iter().map(|(&id, &timeout)| (id, timeout)), self.now.mono_ms);
        self.out.release.push(Entry::Reset { tree: Arc::new(self.tree.clone()), position });
    }

    /// Handles every raft ready: role changes, messages, commits, entries
    /// to append and hard state to persist.
    fn drive_raft(&mut self) {
        while self.raft.has_ready() {
            let mut rd = self.raft.ready();
            if let Some(ss) = rd.ss() {
                self.on_role(ss.raft_state, ss.leader_id);
            }
            self.send_raft(rd.take_messages());
            if !rd.snapshot().is_empty() {
                let meta = rd.snapshot().get_metadata();
                let position = LogPosition { index: meta.index, term: meta.term };
                tracing::info!("server {} takes a snapshot from its leader at index {}", self.my_id, position.index);
                self.raft.mut_store().apply_snapshot(position.index, position.term);
                self.applied = position.index;
                self.installing = Some(position);
                self.out.install_snapshot = Some(position);
            }
            self.commit(rd.take_committed_entries());
            let entries = rd.take_entries();
            if let Some(first) = entries.first()
                && first.index <= self.raft.store().last()
            {
                self.out.truncate_after = Some(self.out.truncate_after.map_or(first.index - 1, |t| t.min(first.index - 1)));
                self.out.append.retain(|e| e.index < first.index);
            }
            self.raft.mut_store().append(&entries);
            self.appended_unpersisted += entries.len() as u64;
            let mut must_persist = !entries.is_empty();
            #[cfg(test)]
            if crate::core::planted::planted(crate::core::planted::Bug::ApplyUncommitted) {
                self.apply_early(&entries);
            }
            self.out.append.extend(entries);
            if let Some(hs) = rd.hs() {
                self.raft.mut_store().set_hard_state(hs.clone());
                if (hs.term, hs.vote) != self.hard_state_sent {
                    self.hard_state_sent = (hs.term, hs.vote);
                    self.hard_state_due = Some(hs.clone());
                    must_persist = true;
                }
            }
            for rs in rd.take_read_states() {
                self.read_index_ready(rs.index, &rs.request_ctx);
            }
            let after_persist = rd.take_persisted_messages();
            must_persist |= !after_persist.is_empty();
            let number = rd.number();
            self.raft.advance_append_async(rd);
            self.tell_raft_applied();
            if must_persist || self.installing.is_some() || !self.unpersisted.is_empty() {
                // Readies persist in order: one with nothing to persist rides with the next persist.
                self.await_persist(number, after_persist);
            } else {
                self.raft.on_persist_ready(number);
            }
            if self.installing.is_some() {
                // Nothing more until the snapshot's tree is in place.
                return;
            }
        }
    }

    /// A role or leader change, as raft reports it.
    fn on_role(&mut self, role: StateRole, leader: u64) {
        let (was_leader, old_leader) = (self.role == StateRole::Leader, self.leader);
        self.role = role;
        self.leader = leader;
        let term = self.raft.raft.term;
        if role == StateRole::Leader && !was_leader {
            tracing::info!("server {} leads term {term}", self.my_id);
            assert!(term <= u32::MAX as u64, "the zxid epoch is the raft term");
            self.lead_from = Some(self.raft.raft.raft_log.last_index());
            self.prepared = Zxid::new(term as u32, 0);
            self.leading = Some(reports::Leadership::new(self.now.mono_ms));
        } else if leader != old_leader {
            match leader {
                0 => tracing::info!("server {} has no leader in term {term} ({role:?})", self.my_id),
                l => tracing::info!("server {} follows server {l} in term {term}", self.my_id),
            }
        }
        if was_leader && role != StateRole::Leader {
            self.lead_from = None;
            self.leading = None;
            self.drop_outstanding();
        }
        if leader != 0 && leader != old_leader {
            self.resend_handshakes(leader);
            if self.handover_to.take() == Some(leader) {
                // Handed over on purpose: every write sent to the old leader
                // is in its log (the new one had all of it) or passed on.
                tracing::info!("server {leader} took over as planned; {} replies still to come are kept", self.origins.len());
                // The old leader dropped the ReadIndex requests it had: ask the new one.
                let mut tokens: Vec<u64> = self.syncs.keys().copied().collect();
                tokens.sort_unstable();
                for token in tokens {
                    self.raft.read_index(token.to_le_bytes().to_vec());
                }
            } else if old_leader != 0 || !self.origins.is_empty() {
                self.drop_pending_requests();
            }
        }
        if (old_leader != 0) != (leader != 0) {
            self.no_leader_since_ms = self.now.mono_ms;
            self.stats.elections += u64::from(leader == 0);
        }
        if leader != 0 {
            // Without a leader, clients keep their connections for
            // LEADERLESS_GRACE_MS (their writes wait): an election, planned
            // or not, does not disconnect them ([`Sequencer::tick`] closes later).
            self.set_serve_mode(ServeMode::ReadWrite);
        }
        self.release_held();
    }

    /// Sends again, to the leader, every handshake unanswered for
    /// [`HANDSHAKE_RESEND_MS`]: a message to the leader can be lost on a
    /// link that broke as it was sent (the peer restarted), and a client
    /// would otherwise wait for its own timeout. The leader treats a repeat
    /// as a no-op (a session it already opened) or answers it again (a
    /// re-attach; only the first answer here counts). One unanswered for
    /// [`HANDSHAKE_GIVE_UP_MS`] is forgotten.
    fn resend_stale_handshakes(&mut self) {
        let (now, leader) = (self.now.mono_ms, self.leader);
        self.handshakes.retain(|_, h| now - h.first_sent_ms < HANDSHAKE_GIVE_UP_MS);
        if leader == 0 || leader == self.my_id {
            return;
        }
        let stale: Vec<PeerMessage> = self.handshakes.values_mut().filter(|h| now - h.sent_at_ms >= HANDSHAKE_RESEND_MS).map(|h| h.sent(now)).collect();
        for msg in stale {
            self.out.peers.push((leader, msg));
        }
    }

    /// Sends the handshakes still unanswered to the new leader (or, when
    /// this server leads now, handles them itself).
    fn resend_handshakes(&mut self, leader: u64) {
        let now = self.now.mono_ms;
        let pending: Vec<PeerMessage> = self.handshakes.values_mut().map(|h| h.sent(now)).collect();
        for msg in pending {
            if leader == self.my_id {
                self.handle_peer(self.my_id, msg);
            } else {
                self.out.peers.push((leader, msg));
            }
        }
    }

    /// The leader changed: writes and syncs sent through the old one may
    /// never be answered, so their connections are closed (as a ZooKeeper
    /// follower closes its clients' connections when it loses its leader);
    /// the clients reconnect and keep their sessions.
    fn drop_pending_requests(&mut self) {
        // Handshakes are sent again instead ([`Sequencer::resend_handshakes`]): their origins stay.
        let handshakes = &self.handshakes;
        let dropped: Vec<(i64, i32)> = self.origins.iter().filter(|(_, o)| !handshakes.contains_key(&(o.shard, o.conn))).map(|(k, _)| *k).collect();
        let mut origins: Vec<Origin> = dropped.iter().filter_map(|k| self.origins.remove(k)).collect();
        origins.extend(self.syncs.drain().map(|(_, s)| s.origin));
        origins.sort_by_key(|o| (o.shard, o.conn));
        origins.dedup();
        for origin in origins {
            self.replies.push_back((0, Entry::Evict { origin }));
        }
    }

    /// Applies committed entries to the tree and moves their transactions,
    /// with the replies queued behind them, to the release.
    /// The planted bug [`Bug::ApplyUncommitted`](crate::core::planted::Bug):
    /// transactions applied and released as soon as they are appended.
    #[cfg(test)]
    fn apply_early(&mut self, entries: &[RaftEntry]) {
        for entry in entries.iter().filter(|e| e.entry_type == EntryType::EntryNormal && !e.data.is_empty()) {
            let txn = Txn::from_bytes(&entry.data).expect("an entry holds a transaction");
            if txn.zxid > self.tree.last_zxid() {
                let effect = self.tree.apply(&txn);
                let origin = self.origins.remove(&(txn.session_id, txn.cxid));
                self.out.release.push(Entry::Txn { txn, origin, effect, position: LogPosition { index: entry.index, term: entry.term } });
            }
        }
    }

    fn commit(&mut self, entries: Vec<RaftEntry>) {
        for entry in entries {
            assert_eq!(entry.index, self.applied + 1, "entries commit in index order");
            self.applied = entry.index;
            self.raft.mut_store().set_applied(entry.index, entry.term);
            if entry.entry_type != EntryType::EntryNormal || entry.data.is_empty() {
                continue;
            }
            let txn = self.committed_txn(&entry);
            #[cfg(test)]
            if txn.zxid <= self.tree.last_zxid() && crate::core::planted::planted(crate::core::planted::Bug::ApplyUncommitted) {
                continue;
            }
            let effect = self.tree.apply(&txn);
            self.stats.commits += 1;
            let origin = self.origins.remove(&(txn.session_id, txn.cxid));
            if let (Some(o), TxnBody::CreateSession { .. }) = (origin, &txn.body) {
                self.handshakes.remove(&(o.shard, o.conn));
            }
            let position = LogPosition { index: entry.index, term: entry.term };
            self.out.release.push(Entry::Txn { txn, origin, effect, position });
        }
        self.outstanding.trim(self.tree.last_zxid());
        if self.catching_up && self.applied > 0 && self.leader != 0 && self.applied >= self.raft.raft.raft_log.committed {
            tracing::info!("server {} has caught up with its leader (index {}); it votes again", self.my_id, self.applied);
            self.catching_up = false;
        }
        if self.lead_from.is_some_and(|from| self.applied >= from) {
            self.lead_from = None;
            self.become_ready_leader();
        }
        let keep = if consensus::membership(&self.cfg).0.len() == 1 { 0 } else { self.cfg.retained_entries };
        let compact_to = self.applied.saturating_sub(keep);
        self.raft.mut_store().compact(compact_to);
    }

    /// The transaction a committed entry holds: this leader's own (no
    /// decoding), or decoded from the entry.
    fn committed_txn(&mut self, entry: &RaftEntry) -> Txn {
        while self.proposed.front().is_some_and(|(index, _, _)| *index < entry.index) {
            self.proposed.pop_front();
        }
        if let Some((index, term, _)) = self.proposed.front()
            && *index == entry.index
            && *term == entry.term
        {
            return self.proposed.pop_front().expect("front exists").2;
        }
        Txn::from_bytes(&entry.data).unwrap_or_else(|e| panic!("committed raft entry {} does not hold a transaction: {e}", entry.index))
    }

    /// A ReadIndex came back: the sync is answered once this server has
    /// applied up to `index`.
    fn read_index_ready(&mut self, index: u64, ctx: &[u8]) {
        let Ok(token) = <[u8; 8]>::try_from(ctx).map(u64::from_le_bytes) else { return };
        if let Some(sync) = self.syncs.remove(&token) {
            self.replies.push_back((index, Entry::Synced { origin: sync.origin, cxid: sync.cxid, path: sync.path }));
        }
    }

    /// Moves replies whose index this server has applied to the release, in
    /// order. (A connection's own replies may still come out of its request
    /// order: a sync answered by a ReadIndex can overtake the connection's
    /// earlier writes, or be overtaken by its later ones. The shard puts
    /// each connection's replies back in request order.)
    fn release_replies(&mut self) {
        while let Some((index, _)) = self.replies.front() {
            if *index > self.applied {
                break;
            }
            let (_, entry) = self.replies.pop_front().expect("front exists");
            self.out.release.push(entry);
        }
    }

    /// The index a reply that needs no transaction waits for: everything
    /// this server has in its log now.
    fn reply_after(&self) -> u64 {
        self.raft.raft.raft_log.last_index()
    }
}
