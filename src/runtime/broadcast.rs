//! The broadcast core's driver: the glue between the pure
//! [`Sequencer`](crate::core::sequencer) and the world. It turns the
//! sequencer's [`Ready`] values into I/O (log appends, persists, channel
//! sends) and I/O completions, shard messages and timer ticks into the
//! sequencer's inputs. It decides nothing itself.
//!
//! Persists: a plain persist is one fdatasync of the active segment, which
//! this core submits to its io_uring (the kernel runs it on its own worker
//! and the completion lands in this core's ring, with no thread hand-off in
//! user space). A persist that rolls the log on to new segments (file
//! creation, `fallocate`, directory syncs) or writes a new raft hard state
//! runs on glommio's blocking thread pool. With `forceSync=no` a plain
//! persist is reported done at once. The one blocking call left on the
//! reactor is cutting a conflicting log suffix, which only a follower
//! does, after a leader change.
//!
//! Batching: each loop turn takes at most [`limits::BATCH_REQUESTS_MAX`]
//! events from the mailbox, feeds them to the sequencer, then carries out
//! its Readys until there is nothing left to do. It runs on an executor of
//! its own or as a task on shard 0's (see `runtime`); nothing here depends
//! on which.

use crate::config::Config;
use crate::core::consensus::LogPosition;
use crate::core::messages::{PeerMessage, ServeMode, ToBroadcast, ToShard};
use crate::core::sequencer::{self, Clock, Persist, Ready, Sequencer};
use crate::core::tree::DataTree;
use crate::runtime::limits;
use crate::runtime::notify::Mailbox;
use crate::runtime::peer::Peers;
use crate::runtime::snapshotter::SnapshotFeed;
use crate::runtime::stop;
use crate::runtime::transfer;
use crate::runtime::wall_ms;
use crate::storage::log::{HardState, Log, PersistJob, PersistWork, TxnLog};
use crate::storage::recovery::Recovered;
use glommio::channels::shared_channel::{ConnectedSender, SharedReceiver, SharedSender};
use glommio::io::BufferedFile;
use glommio::spawn_local;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// What wakes the broadcast loop.
enum Event {
    FromShard(ToBroadcast),
    FromPeer(u64, PeerMessage),
    /// A server's process is gone (its peer port refuses connections).
    PeerGone(u64),
    /// A persist's I/O finished (or failed); the token is the sequencer's.
    Persisted(u64, PersistJob, std::io::Result<()>),
    Tick,
    /// A snapshot from the leader was loaded (or could not be).
    SnapshotLoaded(LogPosition, Result<DataTree, String>),
    /// A snapshot was sent to this server (or its sending failed).
    SnapshotSent(u64, bool),
}

/// What a deferred Ready waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocker {
    /// The running persist (the Ready cuts the log).
    Persist,
    /// A snapshot being loaded (the Ready installs it first).
    Install,
}

/// Everything the broadcast loop starts with.
pub struct BroadcastSetup {
    pub cfg: Arc<Config>,
    /// The recovered tree; the loop makes its own copy, as every core does.
    pub tree: Arc<DataTree>,
    /// What recovery found besides the tree (the log, raft entries, positions).
    pub recovered: Recovered,
    pub from_shards: Vec<SharedReceiver<ToBroadcast>>,
    pub to_shards: Vec<SharedSender<ToShard>>,
    pub snapshots: SnapshotFeed,
    /// The cross-shard read barrier: the last zxid handed to the shards.
    pub released: Arc<AtomicI64>,
    /// This server's peer port (an ensemble's member), listening.
    /// The peer port's listening socket, and TLS for the links (`sslQuorum`).
    pub peer_listener: Option<(std::os::fd::OwnedFd, Option<crate::runtime::tls::PeerTls>)>,
}

/// The driver's I/O state.
struct Driver {
    cfg: Arc<Config>,
    log: TxnLog,
    mailbox: Rc<Mailbox<Event>>,
    out: Vec<ConnectedSender<ToShard>>,
    /// The links to the other servers of the ensemble (none standalone).
    peers: Option<Rc<Peers>>,
    /// Snapshot files arriving from the leader.
    receiver: transfer::Receiver,
    /// Where snapshots are kept.
    snap_dir: std::path::PathBuf,
    snapshots: SnapshotFeed,
    released: Arc<AtomicI64>,
    /// The active log segment, opened for io_uring syncs (re-opened when the log rolls).
    sync_file: Option<(Arc<std::fs::File>, Rc<BufferedFile>)>,
    /// A persist is running.
    persisting: bool,
    /// When the persist in flight started (for mntr's fsynctime).
    persist_started: Option<std::time::Instant>,
    /// A snapshot is being loaded.
    installing: bool,
    /// A snapshot loaded while a persist ran: installed once it ends (the
    /// log is emptied for it, which must not happen under a sync).
    loaded: Option<(LogPosition, DataTree)>,
    /// A Ready that must wait, and what for.
    deferred: Option<(Ready, Blocker)>,
    started: Instant,
    /// When a stop (SIGTERM) began, and when the process exits.
    stopping_since: Option<Instant>,
    exit_at: Option<Instant>,
}

/// How long a stopping server waits for leadership to move and for its
/// clients' answers before it stops anyway.
const STOP_DEADLINE: Duration = Duration::from_secs(5);
/// What a stopping server gives its shards to write the last replies and
/// its links to send the last messages.
const STOP_FLUSH: Duration = Duration::from_millis(500);

/// Runs the broadcast core until the process exits.
pub async fn run_broadcast(setup: BroadcastSetup) {
    let BroadcastSetup { cfg, tree, recovered, from_shards, to_shards, snapshots, released, peer_listener } = setup;
    let tree = DataTree::clone(&tree);
    let Recovered { log, base, entries, applied, .. } = recovered;
    let hard = log.hard_state();
    let hard_state = raft::prelude::HardState { term: hard.term, vote: hard.vote, commit: hard.commit, ..Default::default() };
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
    spawn_timer(mailbox.clone(), Duration::from_millis(crate::core::consensus::RAFT_TICK_MS as u64));
    let peers = peer_listener.map(|(fd, tls)| Rc::new(Peers::start(&cfg, fd, tls, mailbox.clone(), Event::FromPeer, Event::PeerGone)));
    let mut driver = Driver {
        cfg: cfg.clone(),
        log,
        mailbox,
        out,
        peers,
        receiver: transfer::Receiver::default(),
        snap_dir: cfg.data_dir.join(crate::storage::log::DATA_SUBDIR),
        snapshots,
        released,
        sync_file: None,
        persisting: false,
        persist_started: None,
        installing: false,
        loaded: None,
        deferred: None,
        started: Instant::now(),
        stopping_since: None,
        exit_at: None,
    };
    let recovered = sequencer::Recovered { tree, base, entries, applied, hard_state };
    let mut seq = Sequencer::new(cfg, recovered, driver.out.len(), driver.now());
    loop {
        let events = driver.mailbox.drain_up_to(limits::BATCH_REQUESTS_MAX).await;
        let now = driver.now();
        for event in events {
            match event {
                Event::FromShard(msg) => seq.on_message(msg, now),
                Event::FromPeer(from, msg) => driver.on_peer_message(&mut seq, from, msg, now),
                Event::PeerGone(id) => seq.peer_gone(id, now),
                Event::Tick => {
                    if stop::asked() && driver.stopping_since.is_none() {
                        driver.stopping_since = Some(Instant::now());
                        seq.begin_stop(now);
                    }
                    seq.tick(now)
                }
                Event::SnapshotSent(to, ok) => seq.snapshot_sent(to, ok),
                Event::SnapshotLoaded(position, Ok(tree)) => driver.loaded = Some((position, tree)),
                Event::SnapshotLoaded(position, Err(e)) => fatal(&format!("loading the snapshot at index {} from the leader failed: {e}", position.index)),
                Event::Persisted(token, job, Ok(())) => {
                    driver.persisting = false;
                    driver.log.finish_persist(job);
                    seq.persisted(token);
                    if let Some(started) = driver.persist_started.take() {
                        seq.sync_took(started.elapsed().as_micros() as u64);
                    }
                }
                Event::Persisted(_, _, Err(e)) => seq.storage_failed(format!("persisting the transaction log failed: {e}")),
            }
        }
        if !driver.persisting
            && let Some((position, tree)) = driver.loaded.take()
        {
            if let Err(e) = driver.log.reset_to(position.index) {
                fatal(&format!("emptying the log for the snapshot at index {} failed: {e}", position.index));
            }
            driver.installing = false;
            seq.snapshot_installed(tree);
        }
        if let Some((ready, blocker)) = driver.deferred.take() {
            if driver.blocked(blocker) {
                driver.deferred = Some((ready, blocker));
            } else if !driver.act(ready, &mut seq).await {
                return;
            }
        }
        while driver.deferred.is_none() {
            let ready = seq.ready();
            if ready.is_empty() {
                break;
            }
            if !driver.act(ready, &mut seq).await {
                return;
            }
        }
        if let Some(since) = driver.stopping_since
            && driver.exit_at.is_none()
            && !driver.persisting
            && driver.deferred.is_none()
            && (seq.may_stop() || since.elapsed() >= STOP_DEADLINE)
        {
            driver.finish_stop(seq.may_stop()).await;
        }
        if driver.exit_at.is_some_and(|at| Instant::now() >= at) && !driver.persisting {
            tracing::info!("stopped");
            std::process::exit(0);
        }
    }
}

/// Ticks the loop every `every` (session expiry, the reaper).
fn spawn_timer(mailbox: Rc<Mailbox<Event>>, every: Duration) {
    spawn_local(async move {
        loop {
            glommio::timer::sleep(every).await;
            mailbox.push_now(Event::Tick);
        }
    })
    .detach();
}

impl Driver {
    /// The last of a stop: every client connection closes, and the process
    /// exits 0 after [`STOP_FLUSH`], during which the last replies and peer
    /// messages leave and writes still arriving for the old leader are
    /// passed on. Everything acknowledged is durable (no persist runs).
    async fn finish_stop(&mut self, clean: bool) {
        if clean {
            tracing::info!("stopping: every client's request answered, the log synced");
        } else {
            tracing::info!(
                "stopping after {} s although some clients still wait for answers (they reconnect elsewhere); the log is synced",
                STOP_DEADLINE.as_secs()
            );
        }
        for tx in &self.out {
            let _ = tx.send(ToShard::Serving(ServeMode::Closed)).await;
        }
        self.exit_at = Some(Instant::now() + STOP_FLUSH);
        let mailbox = self.mailbox.clone();
        spawn_local(async move {
            glommio::timer::sleep(STOP_FLUSH).await;
            mailbox.push_now(Event::Tick);
        })
        .detach();
    }

    /// The time, for the sequencer.
    fn now(&self) -> Clock {
        Clock { mono_ms: self.started.elapsed().as_millis() as i64, wall_ms: wall_ms() }
    }

    /// Whether what a deferred Ready waits for is still going on.
    fn blocked(&self, blocker: Blocker) -> bool {
        match blocker {
            Blocker::Persist => self.persisting,
            Blocker::Install => self.installing,
        }
    }

    /// A message from another server: snapshot pieces are written here,
    /// raft's message for a snapshot that did not arrive whole is dropped
    /// (raft sends it again), the rest goes to the sequencer.
    fn on_peer_message(&mut self, seq: &mut Sequencer, from: u64, msg: PeerMessage, now: Clock) {
        match msg {
            PeerMessage::SnapshotChunk { zxid, index, term, offset, data, last } => {
                self.receiver.chunk(&self.snap_dir, zxid, LogPosition { index, term }, offset, &data, last);
            }
            PeerMessage::Raft(wire)
                if wire.snapshot.as_ref().is_some_and(|s| self.receiver.file_for(LogPosition { index: s.index, term: s.term }).is_none()) =>
            {
                tracing::warn!("dropping server {from}'s snapshot message: its file did not arrive whole");
            }
            msg => seq.on_peer(from, msg, now),
        }
    }

    /// Carries out one Ready, in the order its fields are written; false
    /// once the shards are gone. A Ready that must wait (for the running
    /// persist, or for a snapshot to load) is kept and carried out later.
    async fn act(&mut self, mut ready: Ready, seq: &mut Sequencer) -> bool {
        if let Some(why) = ready.fatal.take() {
            fatal(&why);
        }
        if let Some(position) = ready.install_snapshot.take() {
            self.start_install(position);
            self.deferred = Some((ready, Blocker::Install));
            return true;
        }
        if ready.truncate_after.is_some() && self.persisting {
            self.deferred = Some((ready, Blocker::Persist));
            return true;
        }
        let last_released = ready.last_released_zxid();
        let Ready { truncate_after, append, persist, peers, release, messages, serving, send_snapshots, .. } = ready;
        for send in send_snapshots {
            self.start_sending(send);
        }
        if let Some(index) = truncate_after {
            debug_assert!(!self.persisting, "a cut waits for the running persist");
            if let Err(e) = self.log.truncate_after(index) {
                fatal(&format!("cutting the log after index {index} failed: {e}"));
            }
        }
        for entry in &append {
            self.log.append(entry);
        }
        if let Some(persist) = persist {
            self.start_persist(persist, seq);
        }
        for (to, msg) in peers {
            self.peers.as_ref().expect("only an ensemble's member has peers to send to").send(to, &msg);
        }
        if let Some(last) = last_released {
            // Raised before any shard can apply the batch: a read arriving at
            // any shard from now on waits until that shard has applied it.
            self.released.store(last.raw(), Ordering::Release);
        }
        if !release.is_empty() {
            let batch = Arc::new(release);
            if self.snapshots.send(batch.clone()).is_err() {
                fatal("the snapshot thread stopped");
            }
            for tx in &self.out {
                if tx.send(ToShard::Batch(batch.clone())).await.is_err() {
                    return false;
                }
            }
        }
        for (shard, msg) in messages {
            if self.out[shard].send(msg).await.is_err() {
                return false;
            }
        }
        if let Some(serving) = serving {
            for tx in &self.out {
                if tx.send(ToShard::Serving(serving)).await.is_err() {
                    return false;
                }
            }
        }
        true
    }

    /// Loads the snapshot file received for `position` on a thread that may
    /// block; the tree comes back as an event.
    fn start_install(&mut self, position: LogPosition) {
        let Some((path, zxid)) = self.receiver.file_for(position) else {
            fatal(&format!("raft took a snapshot at index {} whose file is not here", position.index));
        };
        self.installing = true;
        let mailbox = self.mailbox.clone();
        spawn_local(async move {
            let loaded = glommio::executor().spawn_blocking(move || transfer::load(&path, zxid)).await;
            mailbox.push_now(Event::SnapshotLoaded(position, loaded));
        })
        .detach();
    }

    /// Sends a snapshot to a follower; the outcome comes back as an event.
    fn start_sending(&mut self, send: sequencer::SnapshotSend) {
        let peers = self.peers.clone().expect("only an ensemble's member sends snapshots");
        let (mailbox, dir) = (self.mailbox.clone(), self.snap_dir.clone());
        spawn_local(async move {
            let to = send.to;
            let ok = transfer::send(send.tree, send.position, to, send.message, dir, peers).await;
            mailbox.push_now(Event::SnapshotSent(to, ok));
        })
        .detach();
    }

    /// Starts the persist the sequencer asked for; its completion comes back
    /// as an event (or, with nothing to wait for, at once).
    fn start_persist(&mut self, persist: Persist, seq: &mut Sequencer) {
        let Persist { token, hard_state } = persist;
        let hard_state = hard_state.map(|hs| HardState { term: hs.term, vote: hs.vote, commit: hs.commit });
        let job = match self.log.start_persist(hard_state) {
            Ok(Some(job)) => job,
            // Nothing new to make durable (the ready held only messages for after it).
            Ok(None) => return seq.persisted(token),
            Err(e) => return seq.storage_failed(format!("writing the transaction log failed: {e}")),
        };
        self.persisting = true;
        self.persist_started = Some(std::time::Instant::now());
        let Some(file) = job.sync_file() else {
            // A roll or a hard state: file creation and syncs, on a thread that may block.
            let mailbox = self.mailbox.clone();
            spawn_local(async move {
                let (job, result) = glommio::executor()
                    .spawn_blocking(move || {
                        let mut job = job;
                        let result = job.run();
                        (job, result)
                    })
                    .await;
                mailbox.push_now(Event::Persisted(token, job, result));
            })
            .detach();
            return;
        };
        if !self.cfg.force_sync {
            self.persisting = false;
            self.log.finish_persist(job);
            return seq.persisted(token);
        }
        let handle = match self.uring_handle(file) {
            Ok(handle) => handle,
            Err(e) => return seq.storage_failed(format!("opening the transaction log for syncing failed: {e}")),
        };
        let mailbox = self.mailbox.clone();
        spawn_local(async move {
            let result = handle.fdatasync().await.map_err(std::io::Error::from);
            mailbox.push_now(Event::Persisted(token, job, result));
        })
        .detach();
    }

    /// This core's io_uring handle on `file` (a duplicate descriptor).
    fn uring_handle(&mut self, file: &Arc<std::fs::File>) -> std::io::Result<Rc<BufferedFile>> {
        if let Some((cached, handle)) = &self.sync_file
            && Arc::ptr_eq(cached, file)
        {
            return Ok(handle.clone());
        }
        let fd = file.try_clone()?.into_raw_fd();
        // SAFETY: `fd` is a fresh duplicate that nothing else owns; the handle closes it.
        let handle = Rc::new(unsafe { BufferedFile::from_raw_fd(fd) });
        self.sync_file = Some((file.clone(), handle.clone()));
        Ok(handle)
    }
}

/// Storage failed under an acknowledged-write guarantee: stop now. Every
/// acknowledged write is already durable; a restart recovers them.
fn fatal(why: &str) -> ! {
    tracing::error!("FATAL: {why}; stopping so that no unlogged write is ever acknowledged");
    std::process::exit(2);
}
