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
//! creation, `fallocate`, directory syncs) runs on glommio's blocking
//! thread pool, so nothing here ever blocks the reactor. With
//! `forceSync=no` a plain persist is reported done at once.
//!
//! Batching: each loop turn takes at most [`limits::BATCH_REQUESTS_MAX`]
//! events from the mailbox, feeds them to the sequencer, then carries out
//! its Readys until there is nothing left to do. It runs on an executor of
//! its own or as a task on shard 0's (see `runtime`); nothing here depends
//! on which.

use crate::config::Config;
use crate::core::messages::{ToBroadcast, ToShard};
use crate::core::sequencer::{Clock, Ready, Sequencer};
use crate::core::tree::DataTree;
use crate::core::zxid::Zxid;
use crate::runtime::limits;
use crate::runtime::notify::Mailbox;
use crate::runtime::snapshotter::SnapshotFeed;
use crate::runtime::wall_ms;
use crate::storage::log::{Log, PersistJob, PersistWork, TxnLog};
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
    /// A persist's I/O finished (or failed).
    Persisted(PersistJob, std::io::Result<()>),
    Tick,
}

/// Everything the broadcast loop starts with.
pub struct BroadcastSetup {
    pub cfg: Arc<Config>,
    /// The recovered tree; the loop makes its own copy, as every core does.
    pub tree: Arc<DataTree>,
    pub log: TxnLog,
    pub from_shards: Vec<SharedReceiver<ToBroadcast>>,
    pub to_shards: Vec<SharedSender<ToShard>>,
    pub snapshots: SnapshotFeed,
    /// The cross-shard read barrier: the last zxid handed to the shards.
    pub released: Arc<AtomicI64>,
}

/// The driver's I/O state.
struct Driver {
    cfg: Arc<Config>,
    log: TxnLog,
    mailbox: Rc<Mailbox<Event>>,
    out: Vec<ConnectedSender<ToShard>>,
    snapshots: SnapshotFeed,
    released: Arc<AtomicI64>,
    /// The active log segment, opened for io_uring syncs (re-opened when the log rolls).
    sync_file: Option<(Arc<std::fs::File>, Rc<BufferedFile>)>,
    started: Instant,
}

/// Runs the broadcast core until the process exits.
pub async fn run_broadcast(setup: BroadcastSetup) {
    let BroadcastSetup { cfg, tree, log, from_shards, to_shards, snapshots, released } = setup;
    let tree = DataTree::clone(&tree);
    assert_eq!(tree.last_zxid(), log.last_zxid(), "the recovered tree is the log replayed");
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
    spawn_timer(mailbox.clone(), Duration::from_millis(cfg.tick_ms as u64));
    spawn_timer(mailbox.clone(), Duration::from_millis(cfg.container_check_interval_ms));
    let mut driver = Driver { cfg: cfg.clone(), log, mailbox, out, snapshots, released, sync_file: None, started: Instant::now() };
    let mut seq = Sequencer::new(cfg, tree, driver.out.len(), driver.now());
    loop {
        let events = driver.mailbox.drain_up_to(limits::BATCH_REQUESTS_MAX).await;
        let now = driver.now();
        for event in events {
            match event {
                Event::FromShard(msg) => seq.on_message(msg, now),
                Event::Tick => seq.tick(now),
                Event::Persisted(job, Ok(())) => {
                    let up_to = job.up_to();
                    driver.log.finish_persist(job);
                    seq.persisted(up_to);
                }
                Event::Persisted(_, Err(e)) => seq.storage_failed(format!("persisting the transaction log failed: {e}")),
            }
        }
        loop {
            let ready = seq.ready();
            if ready.is_empty() {
                break;
            }
            if !driver.act(ready, &mut seq).await {
                return;
            }
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
    /// The time, for the sequencer.
    fn now(&self) -> Clock {
        Clock { mono_ms: self.started.elapsed().as_millis() as i64, wall_ms: wall_ms() }
    }

    /// Carries out one Ready, in the order its fields are written; false
    /// once the shards are gone.
    async fn act(&mut self, ready: Ready, seq: &mut Sequencer) -> bool {
        if let Some(why) = ready.fatal {
            fatal(&why);
        }
        for record in &ready.append {
            self.log.append(record.zxid, &record.payload);
        }
        if let Some(up_to) = ready.persist {
            self.start_persist(up_to, seq);
        }
        if let Some(last) = ready.last_released_zxid() {
            // Raised before any shard can apply the batch: a read arriving at
            // any shard from now on waits until that shard has applied it.
            self.released.store(last.raw(), Ordering::Release);
        }
        if !ready.release.is_empty() {
            let batch = Arc::new(ready.release);
            if self.snapshots.send(batch.clone()).is_err() {
                fatal("the snapshot thread stopped");
            }
            for tx in &self.out {
                if tx.send(ToShard::Batch(batch.clone())).await.is_err() {
                    return false;
                }
            }
        }
        for (shard, msg) in ready.messages {
            if self.out[shard].send(msg).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Starts the persist the sequencer asked for; its completion comes back
    /// as an event (or, with nothing to wait for, at once).
    fn start_persist(&mut self, up_to: Zxid, seq: &mut Sequencer) {
        let job = match self.log.start_persist() {
            Ok(Some(job)) => job,
            Ok(None) => unreachable!("the sequencer asks for a persist only with something appended"),
            Err(e) => return seq.storage_failed(format!("writing the transaction log failed: {e}")),
        };
        assert_eq!(job.up_to(), up_to, "the log persists what the sequencer appended");
        let Some(file) = job.sync_file() else {
            // A roll: file creation and directory syncs, on a thread that may block.
            let mailbox = self.mailbox.clone();
            spawn_local(async move {
                let (job, result) = glommio::executor()
                    .spawn_blocking(move || {
                        let mut job = job;
                        let result = job.run();
                        (job, result)
                    })
                    .await;
                mailbox.push_now(Event::Persisted(job, result));
            })
            .detach();
            return;
        };
        if !self.cfg.force_sync {
            self.log.finish_persist(job);
            return seq.persisted(up_to);
        }
        let handle = match self.uring_handle(file) {
            Ok(handle) => handle,
            Err(e) => return seq.storage_failed(format!("opening the transaction log for syncing failed: {e}")),
        };
        let mailbox = self.mailbox.clone();
        spawn_local(async move {
            let result = handle.fdatasync().await.map_err(std::io::Error::from);
            mailbox.push_now(Event::Persisted(job, result));
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
    eprintln!("keeper: FATAL: {why}; stopping so that no unlogged write is ever acknowledged");
    std::process::exit(2);
}
