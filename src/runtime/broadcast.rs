//! The broadcast core: the one place where writes are ordered.
//!
//! It prepares each write against its own tree (which already holds every
//! earlier prepared transaction), stamps zxid and time, appends it to the
//! log, and keeps it pending. Syncs are group commits: one runs at a time,
//! covering everything appended before it started, while new writes keep
//! being prepared and appended (pipelining). A sync writes the batch into
//! the log segment (one pwrite) and submits an fdatasync of it to this
//! core's io_uring: the kernel runs it on its own worker and the completion
//! lands in this core's ring, with no thread hand-off in user space. When a
//! sync completes, the entries it covers are released to every shard as one
//! shared batch.
//!
//! It also owns session expiry (tick buckets), handshakes, the container and
//! TTL reaper, and gathering four-letter-word reports from the shards. It
//! runs on an executor of its own or as a task on shard 0's (see
//! `runtime`); nothing here depends on which.
//! Standalone is an ensemble of one on exactly this path.

use crate::config::Config;
use crate::core::messages::{AdminReport, ConnectInfo, Entry, Origin, ShardId, ShardReport, ToBroadcast, ToShard};
use crate::core::prep::{self, PrepContext};
use crate::core::session::{self, SessionTracker};
use crate::core::tree::DataTree;
use crate::core::txn::{NodeKind, Txn, TxnBody};
use crate::proto::codes::OpCode;
use crate::proto::request::Request;
use crate::runtime::limits;
use crate::runtime::notify::Mailbox;
use crate::runtime::snapshotter::SnapshotFeed;
use crate::runtime::wall_ms;
use crate::storage::log::{SyncJob, TxnLog};
use glommio::channels::shared_channel::{ConnectedSender, SharedReceiver, SharedSender};
use glommio::io::BufferedFile;
use glommio::spawn_local;
use std::collections::{HashMap, VecDeque};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What wakes the broadcast loop.
enum Event {
    FromShard(ToBroadcast),
    Synced(SyncJob, std::io::Result<()>),
    Tick,
    ReapContainers,
}

/// A four-letter-word report being gathered.
struct Gather {
    origin: Origin,
    parts: Vec<ShardReport>,
    remaining: usize,
}

/// The broadcast core's state.
struct Broadcast {
    cfg: Arc<Config>,
    tree: DataTree,
    log: TxnLog,
    zxid: i64,
    sessions: SessionTracker,
    /// The connection each session is attached to.
    owners: HashMap<i64, Origin>,
    /// Entries waiting for the log to be durable up to their zxid.
    pending: VecDeque<(i64, Entry)>,
    syncing: bool,
    /// The active log segment, opened for io_uring syncs (re-opened when the log rolls).
    sync_file: Option<(Arc<std::fs::File>, Rc<BufferedFile>)>,
    started: Instant,
    gathers: HashMap<u64, Gather>,
    next_token: u64,
    /// Messages for shards other than batches (admin), sent after each loop turn.
    outbox: Vec<(ShardId, ToShard)>,
    shard_count: usize,
}

/// Runs the broadcast core until the process exits.
pub async fn run_broadcast(
    cfg: Arc<Config>,
    tree: DataTree,
    log: TxnLog,
    from_shards: Vec<SharedReceiver<ToBroadcast>>,
    to_shards: Vec<SharedSender<ToShard>>,
    snapshots: SnapshotFeed,
    released: Arc<std::sync::atomic::AtomicI64>,
) {
    let mailbox: Rc<Mailbox<Event>> = Rc::new(Mailbox::new(limits::BROADCAST_MAILBOX_ITEMS));
    for rx in from_shards {
        let mailbox = mailbox.clone();
        spawn_local(async move {
            let rx = rx.connect().await;
            while let Some(msg) = rx.recv().await {
                mailbox.push(Event::FromShard(msg)).await;
            }
        })
        .detach();
    }
    let mut out: Vec<ConnectedSender<ToShard>> = Vec::with_capacity(to_shards.len());
    for tx in to_shards {
        out.push(tx.connect().await);
    }
    spawn_timer(mailbox.clone(), Duration::from_millis(cfg.tick_ms as u64), || Event::Tick);
    spawn_timer(mailbox.clone(), Duration::from_millis(cfg.container_check_interval_ms), || Event::ReapContainers);
    let mut core = Broadcast::new(cfg, tree, log, out.len());
    loop {
        for event in mailbox.drain().await {
            core.handle(event);
        }
        core.start_sync(&mailbox);
        let batch = core.release();
        if !batch.is_empty() {
            // Raised before any shard can apply the batch: a read arriving at
            // any shard from now on waits until that shard has applied it.
            if let Some(last) = batch.iter().rev().find_map(|e| if let Entry::Txn { txn, .. } = e { Some(txn.zxid) } else { None }) {
                released.store(last, std::sync::atomic::Ordering::Release);
            }
            let batch = Arc::new(batch);
            if snapshots.send(batch.clone()).is_err() {
                fatal("the snapshot thread stopped");
            }
            for tx in &out {
                if tx.send(ToShard::Batch(batch.clone())).await.is_err() {
                    return;
                }
            }
        }
        for (shard, msg) in core.outbox.drain(..) {
            if out[shard].send(msg).await.is_err() {
                return;
            }
        }
    }
}

fn spawn_timer(mailbox: Rc<Mailbox<Event>>, every: Duration, event: fn() -> Event) {
    spawn_local(async move {
        loop {
            glommio::timer::sleep(every).await;
            mailbox.push_now(event());
        }
    })
    .detach();
}

impl Broadcast {
    fn new(cfg: Arc<Config>, tree: DataTree, log: TxnLog, shard_count: usize) -> Broadcast {
        assert_eq!(tree.last_zxid(), log.last_zxid(), "the recovered tree is the log replayed");
        let started = Instant::now();
        let mut sessions = SessionTracker::new(cfg.tick_ms as i64, session::first_session_id(cfg.my_id, wall_ms()));
        for (&id, &timeout) in tree.sessions() {
            sessions.add(id, timeout, 0);
        }
        let zxid = tree.last_zxid();
        Broadcast {
            cfg,
            tree,
            log,
            zxid,
            sessions,
            owners: HashMap::new(),
            pending: VecDeque::new(),
            syncing: false,
            sync_file: None,
            started,
            gathers: HashMap::new(),
            next_token: 1,
            outbox: Vec::new(),
            shard_count,
        }
    }

    /// Milliseconds since start: the session tracker's clock.
    fn now(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::FromShard(msg) => self.on_message(msg),
            Event::Synced(job, result) => {
                if let Err(e) = result {
                    fatal(&format!("syncing the transaction log failed: {e}"));
                }
                self.log.synced(&job);
                self.syncing = false;
            }
            Event::Tick => {
                for id in self.sessions.expire(self.now()) {
                    eprintln!("keeper: expiring session 0x{id:x}, timeout of {} ms exceeded", self.sessions.timeout_of(id).unwrap_or(0));
                    self.propose(id, 0, TxnBody::CloseSession, None);
                }
            }
            Event::ReapContainers => self.reap_containers(),
        }
    }

    fn on_message(&mut self, msg: ToBroadcast) {
        match msg {
            ToBroadcast::Write { origin, session_id, cxid, op, req, ids } => {
                if !self.sessions.touch(session_id, self.now()) {
                    // ZooKeeper drops requests of unknown or closing sessions silently.
                    return;
                }
                let body = if op == OpCode::CloseSession {
                    self.sessions.set_closing(session_id);
                    TxnBody::CloseSession
                } else {
                    prep::prep(&self.tree, op, &req, &PrepContext { session_id, ids: &ids, extended_types: self.cfg.extended_types })
                };
                self.propose(session_id, cxid, body, Some(origin));
            }
            ToBroadcast::Sync { origin, cxid, path } => self.pending.push_back((self.zxid, Entry::Synced { origin, cxid, path })),
            ToBroadcast::Connect { origin, info } => self.connect(origin, info),
            ToBroadcast::Touch(ids) => {
                let now = self.now();
                for id in ids {
                    self.sessions.touch(id, now);
                }
            }
            ToBroadcast::Admin { origin, query } => {
                let token = self.next_token;
                self.next_token += 1;
                self.gathers.insert(token, Gather { origin, parts: Vec::with_capacity(self.shard_count), remaining: self.shard_count });
                for shard in 0..self.shard_count {
                    self.outbox.push((shard, ToShard::AdminCollect { token, query }));
                }
            }
            ToBroadcast::AdminPart { token, part } => self.admin_part(token, part),
        }
    }

    /// A handshake: a new session (a createSession transaction) or a re-attach.
    fn connect(&mut self, origin: Origin, info: ConnectInfo) {
        if info.last_zxid_seen > self.zxid {
            eprintln!("keeper: refusing session request: client has seen zxid 0x{:x}, our last zxid is 0x{:x}", info.last_zxid_seen, self.zxid);
            self.pending.push_back((self.zxid, Entry::Refused { origin }));
            return;
        }
        let timeout_ms = info.timeout_ms.max(self.cfg.min_session_timeout_ms).min(self.cfg.max_session_timeout_ms);
        let now = self.now();
        if info.session_id == 0 {
            let id = self.sessions.next_session_id();
            self.sessions.add(id, timeout_ms, now);
            self.owners.insert(id, origin);
            self.propose(id, 0, TxnBody::CreateSession { timeout_ms }, Some(origin));
            return;
        }
        let id = info.session_id;
        // The session's current connection is dropped first, even if the password is wrong.
        if let Some(old) = self.owners.remove(&id)
            && old != origin
        {
            self.pending.push_back((self.zxid, Entry::Evict { origin: old }));
        }
        if info.passwd.as_ref() == session::password(id) && self.sessions.touch(id, now) {
            self.owners.insert(id, origin);
            self.pending.push_back((self.zxid, Entry::Attached { origin, session_id: id, timeout_ms }));
        } else {
            self.pending.push_back((self.zxid, Entry::Rejected { origin }));
        }
    }

    /// Stamps, applies (to this core's tree), logs and queues a transaction.
    fn propose(&mut self, session_id: i64, cxid: i32, body: TxnBody, origin: Option<Origin>) {
        self.zxid += 1;
        let txn = Txn { zxid: self.zxid, time_ms: wall_ms(), session_id, cxid, body };
        let effect = self.tree.apply(&txn);
        if matches!(txn.body, TxnBody::CloseSession) {
            self.sessions.remove(session_id);
            self.owners.remove(&session_id);
        }
        if let Err(e) = self.log.append(&txn) {
            fatal(&format!("appending to the transaction log failed: {e}"));
        }
        self.pending.push_back((txn.zxid, Entry::Txn { txn, origin, effect }));
    }

    /// Starts a group-commit sync of everything appended, unless one is running.
    fn start_sync(&mut self, mailbox: &Rc<Mailbox<Event>>) {
        if self.syncing {
            return;
        }
        let job = match self.log.prepare_sync() {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(e) => fatal(&format!("writing the transaction log failed: {e}")),
        };
        if !self.cfg.force_sync {
            self.log.synced(&job);
            return;
        }
        let file = match self.sync_file_for(&job) {
            Ok(file) => file,
            Err(e) => fatal(&format!("opening the transaction log for syncing failed: {e}")),
        };
        self.syncing = true;
        let mailbox = mailbox.clone();
        spawn_local(async move {
            let result = file.fdatasync().await.map_err(std::io::Error::from);
            mailbox.push_now(Event::Synced(job, result));
        })
        .detach();
    }

    /// The io_uring handle of the segment `job` syncs (a duplicate descriptor).
    fn sync_file_for(&mut self, job: &SyncJob) -> std::io::Result<Rc<BufferedFile>> {
        if let Some((file, handle)) = &self.sync_file
            && Arc::ptr_eq(file, job.file())
        {
            return Ok(handle.clone());
        }
        let fd = job.file().try_clone()?.into_raw_fd();
        // SAFETY: `fd` is a fresh duplicate that nothing else owns; the handle closes it.
        let handle = Rc::new(unsafe { BufferedFile::from_raw_fd(fd) });
        self.sync_file = Some((job.file().clone(), handle.clone()));
        Ok(handle)
    }

    /// Takes the entries the log has made durable.
    fn release(&mut self) -> Vec<Entry> {
        let durable = self.log.synced_zxid();
        let mut out = Vec::new();
        while let Some((needs, _)) = self.pending.front() {
            if *needs > durable {
                break;
            }
            out.push(self.pending.pop_front().expect("front exists").1);
        }
        out
    }

    /// Deletes empty containers that once had children, and expired TTL nodes
    /// (ZooKeeper's ContainerManager), through the normal write path.
    fn reap_containers(&mut self) {
        let now_wall = wall_ms();
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
                && now_wall - node.persisted.mtime > ttl_ms
            {
                candidates.push(path.to_string());
            }
        }
        candidates.sort();
        for path in candidates.into_iter().take(per_run) {
            let req = Request::DeleteContainer { path };
            let body = prep::prep(&self.tree, OpCode::DeleteContainer, &req, &PrepContext { session_id: 0, ids: &[], extended_types: self.cfg.extended_types });
            self.propose(0, 0, body, None);
        }
    }

    fn admin_part(&mut self, token: u64, part: ShardReport) {
        let Some(g) = self.gathers.get_mut(&token) else {
            return;
        };
        g.parts.push(part);
        g.remaining -= 1;
        if g.remaining > 0 {
            return;
        }
        let g = self.gathers.remove(&token).expect("present above");
        let now = self.now();
        let wall = wall_ms();
        let report = AdminReport {
            last_zxid: self.log.synced_zxid(),
            node_count: self.tree.node_count() + 1,
            approximate_data_size: self.tree.approximate_data_size(),
            ephemerals: self.tree.ephemerals().iter().map(|(s, paths)| (*s, paths.iter().map(|p| p.to_string()).collect())).collect(),
            sessions: self.sessions.expiries().into_iter().map(|(id, timeout, at)| (id, timeout, wall + (at - now))).collect(),
            shards: g.parts,
            uptime_ms: self.started.elapsed().as_millis() as u64,
        };
        self.outbox.push((g.origin.shard, ToShard::AdminReply { conn: g.origin.conn, report: Arc::new(report) }));
    }
}

/// Storage failed under an acknowledged-write guarantee: stop now. Every
/// acknowledged write is already durable; a restart recovers them.
fn fatal(why: &str) -> ! {
    eprintln!("keeper: FATAL: {why}; stopping so that no unlogged write is ever acknowledged");
    std::process::exit(2);
}
