//! The simulated world: servers, clients, the network between them, and
//! the faults, all stepped by one seeded generator.

mod faults;
mod traffic;

use super::check::{Checker, FNV_START, QueueBounds, fnv};
use super::client::{Client, Reply, Sent};
use super::disk::Image;
use super::history::{self, History};
use super::rng::Rng;
use crate::config::Config;
use crate::core::consensus::{ELECTION_TICKS, LogPosition};
use crate::core::messages::{Entry, PeerMessage, ToBroadcast};
use crate::core::planted::{Bug, planted};
use crate::core::sequencer::{Clock, Persist, Ready, Recovered, Sequencer};
use crate::core::tree::DataTree;
use crate::core::txn::{NodeKind, TxnBody, TxnOp};
use crate::proto::codes::{ErrorCode, OpCode};
use crate::proto::request::Request;
use crate::runtime::shard::{Action, ShardState};
use crate::storage::log::{HardState, Log, MemLog, MemPersist};
use crate::storage::recovery::apply_entry;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// What a run simulates.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Voting servers.
    pub servers: usize,
    /// Observers (raft learners: they follow the log, serve clients, never vote).
    pub observers: usize,
    pub clients: usize,
    /// The run ends once clients have had this many writes acknowledged
    /// (or at `max_ms` of simulated time).
    pub writes: usize,
    pub max_ms: i64,
    /// Whether faults are injected (off: only the seeded network delays).
    pub faults: bool,
    /// Raft entries kept behind the last applied (small: followers that
    /// fall behind get snapshots).
    pub retained_entries: u64,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions { servers: 3, observers: 1, clients: 5, writes: 300, max_ms: 120_000, faults: true, retained_entries: 50 }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// A digest of every commit, acknowledgement and leader change, in order.
    pub trace: u64,
    pub acknowledged: usize,
    pub simulated_ms: i64,
    /// Faults injected: crashes, pauses, partitions, clock jumps.
    pub faults: usize,
    pub disk: DiskFaults,
    pub leader_changes: usize,
    /// Client operations completed: writes acknowledged, reads, syncs.
    pub operations: u64,
    pub watch_events: u64,
}

/// Disk faults met in a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskFaults {
    /// Crashes that left unsynced writes on the disk.
    pub unsynced_kept: usize,
    /// Torn last writes, cut on restart.
    pub torn: usize,
    /// Flipped bits in synced records, and how many a restart found (a
    /// flip in a record's padding changes no data and passes).
    pub flipped: usize,
    pub corruption_found: usize,
    /// Syncs that failed for want of space.
    pub out_of_space: usize,
}

impl std::ops::AddAssign for DiskFaults {
    fn add_assign(&mut self, o: DiskFaults) {
        self.unsynced_kept += o.unsynced_kept;
        self.torn += o.torn;
        self.flipped += o.flipped;
        self.corruption_found += o.corruption_found;
        self.out_of_space += o.out_of_space;
    }
}

/// A message on the wire: delivered at `at` unless its link is cut or its
/// receiver is down (a paused receiver gets it when it resumes).
struct InFlight {
    at: i64,
    seq: u64,
    from: u64,
    to: u64,
    msg: PeerMessage,
}

/// One server's process and disk.
struct Server {
    cfg: Arc<Config>,
    /// None while the process is down.
    seq: Option<Sequencer>,
    /// The disk: the log (durable up to what was synced)...
    log: MemLog,
    /// ...and the snapshot a leader sent, once installed (durable).
    snapshot: Option<(LogPosition, DataTree)>,
    /// The sync in flight: its token, job, and when it completes.
    persist: Option<(u64, MemPersist, i64)>,
    /// While the process is down: what its crash left of the log.
    crashed_log: Option<Image>,
    /// Its log was found corrupt: it stays down until the operator wipes
    /// its data (once every fault is healed) and it catches up.
    corrupt: bool,
    /// Its disk filled up: the failed sync stops the process.
    out_of_space: bool,
    /// The process's clocks.
    clock: ServerClock,
    paused_until: Option<i64>,
    down_until: Option<i64>,
    /// Snapshots sent to this server, by position, not yet installed (a
    /// leader may send another before raft's message for the first arrives).
    received: BTreeMap<LogPosition, DataTree>,
    /// The process's shard cores (none while it is down), the read barrier
    /// they share, and when they last reported their sessions' activity.
    shards: Vec<ShardState>,
    released: Arc<AtomicI64>,
    touches_reported_at: i64,
}

/// The wall clock's reading at simulated time 0 (ms since 1970).
const WALL_EPOCH_MS: i64 = 1_700_000_000_000;
/// How fast or slow a server's clock may run, at most (parts per million).
/// Drift skews session expiry by as much, and the expiry check allows it.
const MAX_DRIFT_PPM: i64 = 10_000;

/// One server's clocks, read at simulated time `now`: the monotonic clock
/// counts from the process's start at its own rate (it drifts), and the
/// wall clock runs with it, plus whatever jumps it made.
#[derive(Debug, Clone, Copy)]
struct ServerClock {
    /// When the process started (simulated ms).
    started_at: i64,
    /// The drift rate changed last at this simulated time and monotonic reading.
    anchor: (i64, i64),
    drift_ppm: i64,
    /// The wall clock's jumps so far.
    wall_offset: i64,
}

impl ServerClock {
    fn mono(&self, now: i64) -> i64 {
        let (at, mono) = self.anchor;
        mono + (now - at) * (1_000_000 + self.drift_ppm) / 1_000_000
    }

    fn read(&self, now: i64) -> Clock {
        let mono_ms = self.mono(now);
        Clock { mono_ms, wall_ms: WALL_EPOCH_MS + self.started_at + self.wall_offset + mono_ms }
    }

    /// The process starts again: its monotonic clock counts from zero.
    fn restart(&mut self, now: i64) {
        self.started_at = now;
        self.anchor = (now, 0);
    }

    /// From now on the clock runs at `ppm` from true.
    fn drift(&mut self, now: i64, ppm: i64) {
        debug_assert!(ppm.abs() <= MAX_DRIFT_PPM);
        self.anchor = (now, self.mono(now));
        self.drift_ppm = ppm;
    }
}

/// The whole simulation.
struct World {
    rng: Rng,
    now: i64,
    opts: SimOptions,
    servers: BTreeMap<u64, Server>,
    clients: Vec<Client>,
    wire: Vec<InFlight>,
    next_wire: u64,
    /// When the last message on each link arrives (links keep their order).
    link_clear: BTreeMap<(u64, u64), i64>,
    /// Directed links that drop everything (a partition), until a time.
    cut: BTreeMap<(u64, u64), i64>,
    checker: Checker,
    history: History,
    acknowledged: BTreeSet<String>,
    /// Sessions: their negotiated timeout and when they were created (ms).
    sessions: BTreeMap<i64, (i32, i64)>,
    /// When a touch of each session last reached a server that led at the time.
    touched_at_leader: BTreeMap<i64, i64>,
    /// When each term's leader was first seen.
    term_started: BTreeMap<u64, i64>,
    /// Expiries already checked (each server releases the same closeSession).
    expiries_checked: BTreeSet<i64>,
    /// Sessions their clients closed (not expiries).
    closed_by_client: BTreeSet<i64>,
    trace: u64,
    faults: usize,
    disk: DiskFaults,
    leaders: BTreeMap<u64, u64>,
}

/// The chance that a sync fails for want of space (per million syncs).
const ENOSPC_PER_MILLION: u64 = 300;
/// The chance that a crash leaves a flipped bit in a synced record (per million crashes).
const FLIP_PER_MILLION: u64 = 50_000;
/// Requests a client has in flight at most (it pipelines).
const PIPELINE_DEPTH: usize = 3;
/// Shard cores per server.
const SHARDS: usize = 2;
/// How often each server's driver ticks its sequencer (ms).
const TICK_EVERY_MS: i64 = 10;
/// A client gives up on a server that has not answered in this long and
/// tries another (ms).
const CLIENT_PATIENCE_MS: i64 = 3000;
/// A client with nothing in flight for this long pings (ms).
const PING_EVERY_MS: i64 = 500;
/// The chance that a client's connection breaks at a step (per million).
const CONNECTION_LOSS_PER_MILLION: u64 = 500;
/// The chance that a ready client closes its session at a step (per million).
const CLOSE_PER_MILLION: u64 = 2_000;
/// The chance that a client's next request is a sync, with a read behind it (per million).
const SYNC_PER_MILLION: u64 = 30_000;
/// Paths of persistent creates, which must survive every fault once acknowledged.
const SURVIVING_PREFIX: &str = "/c";

/// Runs one simulation; an invariant broken on the way is an `Err` naming it.
pub fn run(seed: u64, opts: &SimOptions) -> Result<Outcome, String> {
    let mut w = World::new(seed, opts.clone());
    while w.acknowledged.len() < opts.writes && w.now < opts.max_ms {
        w.step()?;
    }
    w.heal_and_settle()?;
    w.check_no_acknowledged_write_lost()?;
    Ok(Outcome {
        trace: w.trace,
        acknowledged: w.acknowledged.len(),
        simulated_ms: w.now,
        faults: w.faults,
        disk: w.disk,
        leader_changes: w.leaders.len(),
        operations: w.history.operations,
        watch_events: w.history.watch_events,
    })
}

fn config(id: u64, opts: &SimOptions, election_ticks: usize) -> Arc<Config> {
    let mut servers = crate::config::ensemble::loopback_servers(opts.servers + opts.observers);
    for observer in &mut servers[opts.servers..] {
        observer.role = crate::config::ensemble::Role::Observer;
    }
    Arc::new(Config {
        tick_ms: 2000,
        min_session_timeout_ms: 4000,
        max_session_timeout_ms: 40_000,
        extended_types: true,
        my_id: id as u8,
        servers,
        retained_entries: opts.retained_entries,
        fixed_election_ticks: Some(election_ticks),
        ..Config::default()
    })
}

impl World {
    fn new(seed: u64, opts: SimOptions) -> World {
        let mut rng = Rng::new(seed);
        let mut servers = BTreeMap::new();
        for id in 1..=(opts.servers + opts.observers) as u64 {
            let election_ticks = rng.range(ELECTION_TICKS as u64, 2 * ELECTION_TICKS as u64) as usize;
            let cfg = config(id, &opts, election_ticks);
            let started_at = rng.range(0, 50) as i64;
            // Quartz: within 100 ppm (faults may make it far worse).
            let drift_ppm = rng.range(0, 201) as i64 - 100;
            servers.insert(
                id,
                Server {
                    cfg,
                    seq: None,
                    log: MemLog::default(),
                    snapshot: None,
                    persist: None,
                    crashed_log: None,
                    corrupt: false,
                    out_of_space: false,
                    clock: ServerClock { started_at, anchor: (started_at, 0), drift_ppm, wall_offset: 0 },
                    paused_until: None,
                    down_until: Some(started_at),
                    received: BTreeMap::new(),
                    shards: Vec::new(),
                    released: Arc::new(AtomicI64::new(0)),
                    touches_reported_at: 0,
                },
            );
        }
        let clients = (0..opts.clients as u64).map(|id| Client::new(id, 1 + id % (opts.servers + opts.observers) as u64)).collect();
        World {
            rng,
            now: 0,
            opts,
            servers,
            clients,
            wire: Vec::new(),
            next_wire: 0,
            link_clear: BTreeMap::new(),
            cut: BTreeMap::new(),
            checker: Checker::default(),
            history: History::default(),
            acknowledged: BTreeSet::new(),
            sessions: BTreeMap::new(),
            touched_at_leader: BTreeMap::new(),
            term_started: BTreeMap::new(),
            expiries_checked: BTreeSet::new(),
            closed_by_client: BTreeSet::new(),
            trace: FNV_START,
            faults: 0,
            disk: DiskFaults::default(),
            leaders: BTreeMap::new(),
        }
    }

    fn note(&mut self, event: &str) {
        self.trace = fnv(event.as_bytes(), self.trace);
    }

    /// One step: time passes; faults strike (before the syncs due in the
    /// meantime are seen to complete: as if they were a little slower);
    /// then due syncs, deliveries, ticks and client actions; then every
    /// server acts on its readies; then the invariants.
    fn step(&mut self) -> Result<(), String> {
        self.now += self.rng.range(1, TICK_EVERY_MS as u64 + 1) as i64;
        self.start_and_resume()?;
        if self.opts.faults {
            self.inject_faults();
        }
        self.complete_syncs();
        self.deliver();
        self.tick();
        self.drive_clients()?;
        self.settle()?;
        self.hear_replies()
    }

    fn up(&self, id: u64) -> bool {
        let s = &self.servers[&id];
        s.seq.is_some() && s.paused_until.is_none()
    }

    fn clock(&self, id: u64) -> Clock {
        self.servers[&id].clock.read(self.now)
    }

    /// Starts servers whose restart is due (recovering from their disk) and resumes paused ones.
    /// A server whose log is corrupt refuses to start (and stays down).
    fn start_and_resume(&mut self) -> Result<(), String> {
        let ids: Vec<u64> = self.servers.keys().copied().collect();
        for id in ids {
            let now = self.now;
            let s = self.servers.get_mut(&id).unwrap();
            if s.paused_until.is_some_and(|t| t <= now) {
                s.paused_until = None;
            }
            if s.down_until.is_some_and(|t| t <= now) {
                s.down_until = None;
                if let Some(image) = s.crashed_log.take() {
                    match image.recover() {
                        Ok(log) => s.log = log,
                        Err(e) if image.flipped.is_some() && self.opts.faults => {
                            s.corrupt = true;
                            self.disk.corruption_found += 1;
                            self.note(&format!("{now} corrupt {id}: {e}"));
                            continue;
                        }
                        Err(_) if image.flipped.is_some() => {
                            self.disk.corruption_found += 1;
                            // Healing: the operator wipes its data at once.
                            s.snapshot = None;
                        }
                        Err(e) => return Err(format!("at {now} ms server {id} could not read a log no fault damaged: {e}")),
                    }
                }
                s.clock.restart(now);
                let (tree, base) = match &s.snapshot {
                    Some((position, tree)) => (tree.clone(), *position),
                    None => (DataTree::new(), LogPosition::default()),
                };
                let entries = s.log.read(base.index, s.log.last_index()).expect("the memory log reads");
                let hard = s.log.hard_state();
                let mut tree = tree;
                let mut applied = base.index;
                for e in entries.iter().take_while(|e| e.index <= hard.commit) {
                    apply_entry(&mut tree, e).expect("a logged entry applies");
                    applied = e.index;
                }
                let hard_state = raft::prelude::HardState { term: hard.term, vote: hard.vote, commit: hard.commit.max(base.index), ..Default::default() };
                s.released = Arc::new(AtomicI64::new(tree.last_zxid().raw()));
                s.shards = (0..SHARDS).map(|shard| ShardState::new(shard, s.cfg.clone(), tree.clone(), s.released.clone())).collect();
                s.touches_reported_at = now;
                let recovered = Recovered { tree, base, entries, applied, hard_state };
                let clock = s.clock.read(now);
                debug_assert_eq!(clock.mono_ms, 0);
                s.seq = Some(Sequencer::new(s.cfg.clone(), recovered, SHARDS, clock));
                self.checker.forget_log_of(id);
                self.note(&format!("{now} start {id}"));
            }
        }
        Ok(())
    }

    fn complete_syncs(&mut self) {
        let ids: Vec<u64> = self.servers.keys().copied().collect();
        for id in ids {
            if !self.up(id) {
                continue;
            }
            let now = self.now;
            let s = self.servers.get_mut(&id).unwrap();
            if s.persist.as_ref().is_some_and(|(_, _, at)| *at <= now) {
                let (token, job, _) = s.persist.take().unwrap();
                if self.opts.faults && token != u64::MAX && self.rng.chance(ENOSPC_PER_MILLION) {
                    // The disk is full: the sync fails, and the process stops on it.
                    s.out_of_space = true;
                    self.disk.out_of_space += 1;
                    s.seq.as_mut().unwrap().storage_failed("persisting the transaction log failed: No space left on device (os error 28)".into());
                    continue;
                }
                s.log.finish_persist(job);
                if token != u64::MAX {
                    s.seq.as_mut().unwrap().persisted(token);
                }
            }
        }
    }

    fn deliver(&mut self) {
        let now = self.now;
        let mut due: Vec<InFlight> = Vec::new();
        let mut later = Vec::new();
        for m in self.wire.drain(..) {
            let receiver = &self.servers[&m.to];
            if m.at <= now && receiver.paused_until.is_none() {
                due.push(m);
            } else {
                later.push(m);
            }
        }
        self.wire = later;
        due.sort_by_key(|m| (m.at, m.seq));
        for m in due {
            let cut = self.cut.get(&(m.from, m.to)).is_some_and(|until| *until > now);
            if cut || self.servers[&m.to].seq.is_none() {
                continue;
            }
            if let PeerMessage::Touch(ids) = &m.msg {
                self.touches_arrive(m.to, ids);
            }
            let clock = self.clock(m.to);
            self.servers.get_mut(&m.to).unwrap().seq.as_mut().unwrap().on_peer(m.from, m.msg, clock);
        }
    }

    fn tick(&mut self) {
        let ids: Vec<u64> = self.servers.keys().copied().collect();
        for id in ids {
            if self.up(id) {
                let clock = self.clock(id);
                self.servers.get_mut(&id).unwrap().seq.as_mut().unwrap().tick(clock);
                self.report_touches(id);
            }
        }
    }

    /// Puts a message on the link `from` → `to`. Links are TCP: in order,
    /// each message delayed (now and then by hundreds of ms). raft's own
    /// messages may also be dropped or duplicated, which raft tolerates;
    /// keeper's others are not (TCP neither drops without closing the
    /// link nor duplicates), except by a partition, which drops everything.
    fn send(&mut self, from: u64, to: u64, msg: PeerMessage) {
        let raft = matches!(msg, PeerMessage::Raft(_));
        if self.opts.faults && raft && self.rng.chance(10_000) {
            return;
        }
        let delay = if self.opts.faults && self.rng.chance(5_000) { self.rng.range(50, 500) } else { self.rng.range(0, 2) } as i64;
        let copies = if self.opts.faults && raft && self.rng.chance(5_000) { 2 } else { 1 };
        let link = self.link_clear.entry((from, to)).or_default();
        let at = (self.now + delay).max(*link);
        *link = at;
        for _ in 0..copies {
            self.next_wire += 1;
            self.wire.push(InFlight { at, seq: self.next_wire, from, to, msg: msg.clone() });
        }
    }

    /// Every up server acts on its readies until none has anything left to do.
    fn settle(&mut self) -> Result<(), String> {
        for _ in 0..100 {
            let mut moved = false;
            let ids: Vec<u64> = self.servers.keys().copied().collect();
            for id in ids {
                if !self.up(id) {
                    continue;
                }
                let ready = self.servers.get_mut(&id).unwrap().seq.as_mut().unwrap().ready();
                if !ready.is_empty() {
                    moved = true;
                    self.act(id, ready)?;
                }
            }
            for id in self.servers.keys().copied().collect::<Vec<_>>() {
                if self.up(id) {
                    let s = &self.servers[&id];
                    let base = s.snapshot.as_ref().map_or(0, |(p, _)| p.index);
                    self.checker.observe(id, s.seq.as_ref().unwrap(), &s.log, base, false).map_err(|e| format!("at {} ms: {e}", self.now))?;
                    let bounds = QueueBounds::of_workload(self.servers.len(), self.clients.len(), PIPELINE_DEPTH);
                    bounds.check(s.seq.as_ref().unwrap()).map_err(|e| format!("at {} ms server {id}: {e}", self.now))?;
                }
            }
            if !moved {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Does what server `id`'s driver does with a Ready, in the documented order.
    fn act(&mut self, id: u64, mut ready: Ready) -> Result<(), String> {
        if let Some(why) = ready.fatal.take() {
            if !self.servers[&id].out_of_space {
                return Err(format!("server {id} stopped: {why}"));
            }
            // The operator frees space and starts it again.
            let back = self.now + self.rng.range(100, 2000) as i64;
            self.crash(id, back);
            return Ok(());
        }
        let now = self.now;
        if let Some(position) = ready.install_snapshot.take() {
            let s = self.servers.get_mut(&id).unwrap();
            let tree = s.received.remove(&position).expect("the snapshot's tree arrived before raft's message for it");
            s.received.retain(|at, _| at.index > position.index);
            // The driver empties the log only once the running sync ends.
            if let Some((token, job, _)) = s.persist.take() {
                s.log.finish_persist(job);
                if token != u64::MAX {
                    s.seq.as_mut().unwrap().persisted(token);
                }
            }
            s.log.reset_to(position.index);
            s.snapshot = Some((position, tree.clone()));
            s.seq.as_mut().unwrap().snapshot_installed(tree);
            self.checker.forget_log_of(id);
        }
        for send in ready.send_snapshots.drain(..) {
            let reachable = self.servers[&send.to].seq.is_some() && self.cut.get(&(id, send.to)).is_none_or(|until| *until <= now);
            if reachable {
                self.servers.get_mut(&send.to).unwrap().received.insert(send.position, send.tree);
                self.send(id, send.to, send.message);
            }
            self.servers.get_mut(&id).unwrap().seq.as_mut().unwrap().snapshot_sent(send.to, reachable);
        }
        let s = self.servers.get_mut(&id).unwrap();
        if let Some(index) = ready.truncate_after {
            // The driver waits for the running sync first; here it ends now.
            if let Some((token, job, _)) = s.persist.take() {
                s.log.finish_persist(job);
                if token != u64::MAX {
                    s.seq.as_mut().unwrap().persisted(token);
                }
            }
            s.log.truncate_after(index).expect("the memory log truncates");
        }
        for e in &ready.append {
            s.log.append(e);
        }
        if let Some(Persist { token, hard_state }) = ready.persist.take() {
            if let Some((u64::MAX, job, _)) = s.persist.take() {
                // The planted bug's sync, reported long ago, is done by now.
                s.log.finish_persist(job);
            }
            let hard = hard_state.map(|h| HardState { term: h.term, vote: h.vote, commit: h.commit });
            match s.log.start_persist(hard).expect("the memory log persists") {
                None => s.seq.as_mut().unwrap().persisted(token),
                Some(job) => {
                    let slow = self.opts.faults && self.rng.chance(20_000);
                    let at = now + if slow { self.rng.range(100, 400) } else { self.rng.range(2, 20) } as i64;
                    let s = self.servers.get_mut(&id).unwrap();
                    if planted(Bug::AckBeforeSync) {
                        // Reported durable now; the sync itself still takes its time.
                        s.seq.as_mut().unwrap().persisted(token);
                        s.persist = Some((u64::MAX, job, at));
                    } else {
                        s.persist = Some((token, job, at));
                    }
                }
            }
        }
        for (to, msg) in ready.peers.drain(..) {
            self.send(id, to, msg);
        }
        if let Some(mode) = ready.serving.take() {
            self.servers.get_mut(&id).unwrap().shards.iter_mut().for_each(|shard| shard.set_serve_mode(mode));
        }
        debug_assert!(ready.messages.is_empty(), "nothing in the simulator asks for four-letter-word reports");
        if let Some(last) = ready.last_released_zxid() {
            // Raised before any shard applies the batch, as the driver does.
            self.servers[&id].released.store(last.raw(), Ordering::Release);
        }
        for entry in ready.release.drain(..) {
            self.released(id, &entry)?;
            self.servers.get_mut(&id).unwrap().shards.iter_mut().for_each(|shard| shard.on_entry(&entry));
        }
        self.servers.get_mut(&id).unwrap().shards.iter_mut().for_each(ShardState::run_waiting_reads);
        let (leader, _) = self.servers[&id].seq.as_ref().unwrap().leader();
        let term = self.servers[&id].seq.as_ref().unwrap().term();
        if leader != 0 && self.leaders.insert(term, leader).is_none() {
            self.term_started.insert(term, now);
            self.note(&format!("term {term} leader {leader}"));
        }
        Ok(())
    }

    /// A committed entry server `id` released to its shards: the history
    /// learns the shared keys' values, and session ends are checked.
    fn released(&mut self, id: u64, entry: &Entry) -> Result<(), String> {
        let Entry::Txn { txn, .. } = entry else { return Ok(()) };
        self.note(&format!("{id} commit {}", txn.zxid.raw()));
        let ops = match &txn.body {
            TxnBody::Single(op) => std::slice::from_ref(op),
            TxnBody::Multi(ops) => ops.as_slice(),
            _ => &[],
        };
        for op in ops {
            if let TxnOp::Create { path, data, .. } | TxnOp::SetData { path, data, .. } = op {
                self.history.committed(txn.zxid.raw(), path, data);
            }
        }
        match txn.body {
            TxnBody::CreateSession { timeout_ms } => {
                // Created no later than now, and no earlier than the first
                // client then without a session lost its last one.
                let asked = self.clients.iter().filter(|c| c.session.is_none()).map(|c| c.no_session_since).min().unwrap_or(self.now);
                self.sessions.entry(txn.session_id).or_insert((timeout_ms, asked.min(self.now)));
            }
            TxnBody::CloseSession => {
                if !self.closed_by_client.contains(&txn.session_id) {
                    self.check_expiry(txn.session_id, txn.zxid.epoch() as u64)?;
                }
                let tree = self.servers[&id].seq.as_ref().expect("a releasing server runs").tree();
                let owned_by_it = |(_, n): &(_, &crate::core::tree::Node)| n.kind() == NodeKind::Ephemeral { session_id: txn.session_id };
                if let Some((left, _)) = tree.paths().find(owned_by_it) {
                    return Err(format!(
                        "at {} ms server {id} applied the close of session 0x{:x} and still holds its ephemeral {left}",
                        self.now, txn.session_id
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A session's closeSession committed with no client asking: an
    /// expiry. It must come no sooner than the session's timeout (less
    /// what the leader's clock may have drifted) after the latest of its
    /// creation, a touch reaching a leader, and the start of the expiring
    /// leader's term.
    fn check_expiry(&mut self, session: i64, term: u64) -> Result<(), String> {
        if !self.expiries_checked.insert(session) {
            return Ok(());
        }
        let Some(&(timeout, created)) = self.sessions.get(&session) else { return Ok(()) };
        let touched = self.touched_at_leader.get(&session).copied().unwrap_or(0);
        let term_start = self.term_started.get(&term).copied().unwrap_or(0);
        // The leader's clock may run fast by as much as drift allows.
        let earliest = created.max(touched).max(term_start) + timeout as i64 * (1_000_000 - MAX_DRIFT_PPM) / 1_000_000;
        if self.now < earliest {
            return Err(format!(
                "session 0x{session:x} expired at {} ms, before {earliest} ms (timeout {timeout} ms; created {created}, touched at a leader {touched}, term {term} began {term_start})",
                self.now
            ));
        }
        Ok(())
    }

    /// Each server's shards report their sessions' activity, as they do
    /// twice per tick (to a running server: its driver's tick calls this).
    fn report_touches(&mut self, id: u64) {
        debug_assert!(self.up(id));
        let s = self.servers.get_mut(&id).unwrap();
        if self.now - s.touches_reported_at < s.cfg.tick_ms as i64 / 2 {
            return;
        }
        s.touches_reported_at = self.now;
        let touched: Vec<i64> = s.shards.iter_mut().flat_map(|shard| shard.touched.drain()).filter(|s| *s != 0).collect();
        if !touched.is_empty() {
            self.touches_arrive(id, &touched);
            let clock = self.clock(id);
            self.servers.get_mut(&id).unwrap().seq.as_mut().unwrap().on_message(ToBroadcast::Touch(touched), clock);
        }
    }

    /// Touches of `ids` arrive at server `id`: noted if it leads.
    fn touches_arrive(&mut self, id: u64, ids: &[i64]) {
        if self.up(id) && self.servers[&id].seq.as_ref().unwrap().leader().1 {
            for s in ids {
                self.touched_at_leader.insert(*s, self.now);
            }
        }
    }

    /// Every fault ends; the ensemble runs on for a while without new
    /// ones, and every server must end at the same zxid with the same tree.
    fn heal_and_settle(&mut self) -> Result<(), String> {
        self.opts.faults = false;
        self.cut.clear();
        for s in self.servers.values_mut() {
            s.paused_until = None;
            if s.corrupt {
                // The operator wipes its data; it starts empty and catches up.
                (s.corrupt, s.snapshot) = (false, None);
                s.down_until = Some(0);
            }
            if s.down_until.is_some() {
                s.down_until = Some(0);
            }
        }
        let end = self.now + 20_000;
        while self.now < end {
            self.step()?;
            let zxids: BTreeSet<i64> = self.servers.values().map(|s| s.seq.as_ref().map_or(-1, |q| q.committed_zxid().raw())).collect();
            if zxids.len() == 1 && self.wire.is_empty() && self.clients.iter().all(|c| !c.connecting) {
                break;
            }
        }
        let ids: Vec<u64> = self.servers.keys().copied().collect();
        let zxids: Vec<i64> = ids.iter().map(|id| self.servers[id].seq.as_ref().map_or(-1, |q| q.committed_zxid().raw())).collect();
        if zxids.windows(2).any(|w| w[0] != w[1]) {
            return Err(format!("20 s after healing, servers are at different zxids: {zxids:x?}"));
        }
        for id in ids {
            let s = &self.servers[&id];
            let base = s.snapshot.as_ref().map_or(0, |(p, _)| p.index);
            self.checker.observe(id, s.seq.as_ref().unwrap(), &s.log, base, true).map_err(|e| format!("after healing: {e}"))?;
        }
        Ok(())
    }

    fn check_no_acknowledged_write_lost(&self) -> Result<(), String> {
        for (id, s) in &self.servers {
            let tree = s.seq.as_ref().expect("every server runs after healing").tree();
            if let Some(lost) = self.acknowledged.iter().find(|p| tree.get(p).is_none()) {
                return Err(format!("acknowledged {lost} is missing on server {id}"));
            }
        }
        Ok(())
    }
}
