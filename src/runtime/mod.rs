//! glommio glue: one pinned executor per shard, one for the broadcast core
//! (unless it shares shard 0's), and the bounded channels between them (a
//! star around the broadcast loop).
//!
//! Placement: a dedicated broadcast core takes the first allowed CPU and the
//! shards the following ones, wrapping around when there are more shards
//! than CPUs. A shared broadcast core (`keeper.broadcastCore=shared`, the
//! default on one or two CPUs) runs the broadcast loop as a task on shard
//! 0's executor: a write then costs no cross-core hop and no second thread's
//! wake-up and sleep (PERF.md). The shards keep their CPUs, and the first
//! is left to the kernel's sync workers and the snapshot thread.

pub mod admin;
pub mod broadcast;
pub mod fourlw;
pub mod http;
pub mod input;
pub mod limits;
pub mod metrics;
pub mod notify;
pub mod peer;
pub mod sd_notify;
pub mod shard;
pub mod snapshotter;
pub mod stop;
pub mod stream;
pub mod tls;
pub mod transfer;

use crate::config::Config;
use crate::core::tree::DataTree;
use crate::storage::log::DATA_SUBDIR;
use crate::storage::{lock, recovery};
use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::sync::Arc;

/// Milliseconds since the Unix epoch: transaction times and statistics.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// How long start-up waits for the client port to become free.
const PORT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// I/O memory per executor: keeper does no DMA file I/O, so keep it small.
const EXECUTOR_IO_MEMORY_BYTES: usize = 256 << 10;

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect();
        if cpus.is_empty() { vec![0] } else { cpus }
    }
}

/// A TCP socket bound to `addr` (SO_REUSEADDR, and SO_REUSEPORT if asked).
fn bound_socket(addr: SocketAddr, reuse_port: bool) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(reuse_port)?;
    s.bind(&addr.into())?;
    Ok(s)
}

/// `s`, listening with `backlog`, as a descriptor to hand to a core.
fn listening(s: Socket, backlog: i32) -> std::io::Result<OwnedFd> {
    s.listen(backlog)?;
    // SAFETY: into_raw_fd hands over sole ownership of the descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(s.into_raw_fd()) })
}

/// An HTTP endpoint's listening socket: `what` it serves, under `keys`,
/// at `url` on `addr`.
fn listen_http(addr: SocketAddr, what: &str, keys: &str, url: &str) -> Result<OwnedFd, String> {
    let fd = bound_socket(addr, false)
        .and_then(|s| listening(s, http::CONNECTIONS_MAX as i32))
        .map_err(|e| format!("cannot listen on {addr} for {what} ({keys}): {e}"))?;
    tracing::info!("{what} on http://{addr}{url}");
    Ok(fd)
}

/// Opens one listening socket per shard on `addr`, sharing the port through
/// SO_REUSEPORT so the kernel spreads connections across shards.
///
/// A probe bind without SO_REUSEPORT comes first: otherwise a second keeper on
/// the same port would silently join the group instead of failing. The probe
/// is retried for a while: after a crash, the kernel tears down the old
/// process's io_uring (and the listening socket it holds) asynchronously,
/// and new connections must not land in that dying socket's queue.
fn listen(addr: SocketAddr, shards: usize) -> Result<Vec<OwnedFd>, String> {
    let fail = |e: std::io::Error| format!("cannot listen on {addr}: {e}");
    let deadline = std::time::Instant::now() + PORT_WAIT;
    let mut said = false;
    loop {
        match bound_socket(addr, false) {
            Ok(probe) => break drop(probe),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                if !said {
                    tracing::info!(
                        "client port {addr} is in use; retrying for up to {} s (a server that just stopped may still hold it; another one running there will not let go)",
                        PORT_WAIT.as_secs()
                    );
                    said = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            Err(e) => return Err(fail(e)),
        }
    }
    (0..shards).map(|_| bound_socket(addr, true).and_then(|s| listening(s, limits::LISTEN_BACKLOG))).collect::<std::io::Result<Vec<_>>>().map_err(fail)
}

/// Locks the snapshot directory and, when it is another, the log directory.
fn lock_data_dirs(snap_dir: &std::path::Path, log_dir: &std::path::Path) -> Result<Vec<lock::DirLock>, String> {
    let mut locks = vec![lock::lock(snap_dir)?];
    let same = std::fs::canonicalize(snap_dir).ok() == std::fs::canonicalize(log_dir).ok();
    if !same {
        locks.push(lock::lock(log_dir)?);
    }
    Ok(locks)
}

/// Recovers state from disk, starts every core, and serves until the process exits.
pub fn serve(cfg: Config) -> Result<(), String> {
    let cfg = Arc::new(cfg);
    let log_dir = cfg.data_log_dir.join(DATA_SUBDIR);
    let snap_dir = cfg.data_dir.join(DATA_SUBDIR);
    // Held until the process ends; taken before anything reads the directories.
    let _locks = lock_data_dirs(&snap_dir, &log_dir)?;
    stop::watch_signals()?;
    let tls = if cfg.secure_client_addr.is_some() { Some(tls::server_config(&cfg.ssl).map_err(|e| format!("TLS for secureClientPort: {e}"))?) } else { None };
    let listeners = if cfg.plain_clients { listen(cfg.client_addr, cfg.shards)? } else { Vec::new() };
    let secure_listeners = match cfg.secure_client_addr {
        Some(addr) => listen(addr, cfg.shards)?,
        None => Vec::new(),
    };
    let (mut listeners, mut secure_listeners) = (listeners.into_iter(), secure_listeners.into_iter());
    let mut metrics_listener = cfg
        .metrics_addr
        .map(|addr| listen_http(addr, "Prometheus metrics", "metricsProvider.httpHost, metricsProvider.httpPort", metrics::PATH))
        .transpose()?;
    let mut admin_listener =
        cfg.admin.as_ref().map(|a| listen_http(a.addr, "the AdminServer", "admin.serverAddress, admin.serverPort", &a.command_url)).transpose()?;
    let peer_tls = cfg.ssl_quorum.as_ref().map(|ssl| tls::peer_configs(ssl).map_err(|e| format!("TLS for sslQuorum: {e}"))).transpose()?;
    let peer_listener = if cfg.servers.is_empty() { None } else { Some((peer::bind(&cfg)?, peer_tls)) };
    let started = std::time::Instant::now();
    let (voters, _) = crate::core::consensus::membership(&cfg);
    let only_voter = voters == [cfg.my_id as u64];
    let (tree, recovered) = recovery::recover(&snap_dir, &log_dir, cfg.segment_bytes, only_voter)?;
    let from = recovered.snapshot.as_ref().map_or("an empty tree".to_string(), |s| format!("snapshot {}", s.path.display()));
    tracing::info!(
        "recovered {} nodes (as srvr counts them) and {} sessions (zxid {}) from {from}, {} legacy transactions and {} raft entries (applied up to index {}) in {} ms",
        tree.reported_node_count(),
        tree.sessions().len(),
        tree.last_zxid(),
        recovered.legacy_replayed,
        recovered.entries.len(),
        recovered.applied,
        started.elapsed().as_millis()
    );
    let released = Arc::new(std::sync::atomic::AtomicI64::new(tree.last_zxid().raw()));
    // Each core (the broadcast loop and the snapshotter included) copies the
    // recovered tree's map (the nodes are shared) in its own thread; the
    // original goes when the last copy is made.
    let tree = Arc::new(tree);
    let snapshots = snapshotter::start(cfg.clone(), tree.clone(), snap_dir, log_dir);

    let cpus = allowed_cpus();
    let mut from_shards = Vec::new();
    let mut to_shards = Vec::new();
    let mut shard_ends = Vec::new();
    for _ in 0..cfg.shards {
        let (tx_b, rx_b) = shared_channel::new_bounded(limits::SHARD_TO_BROADCAST_MESSAGES);
        let (tx_s, rx_s) = shared_channel::new_bounded(limits::BROADCAST_TO_SHARD_BATCHES);
        from_shards.push(rx_b);
        to_shards.push(tx_s);
        shard_ends.push((tx_b, rx_s));
    }
    let mut broadcast = Some(broadcast::BroadcastSetup {
        cfg: cfg.clone(),
        tree: tree.clone(),
        recovered,
        from_shards,
        to_shards,
        snapshots,
        released: released.clone(),
        peer_listener,
    });
    let mut handles = Vec::new();
    let conn_limits = Arc::new(limits::ConnLimits::new(cfg.max_client_cnxns));
    for (shard, (to_broadcast, from_broadcast)) in shard_ends.into_iter().enumerate() {
        let (listener_fd, secure_listener) = (listeners.next(), secure_listeners.next());
        let tls = tls.clone();
        let (cfg, tree, conn_limits, released) = (cfg.clone(), tree.clone(), conn_limits.clone(), released.clone());
        let cpu = cpus[(1 + shard) % cpus.len()];
        let local_broadcast = if cfg.shared_broadcast && shard == 0 { broadcast.take() } else { None };
        let (metrics_listener, admin_listener) = if shard == 0 { (metrics_listener.take(), admin_listener.take()) } else { (None, None) };
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("keeper-shard-{shard}"))
            .io_memory(EXECUTOR_IO_MEMORY_BYTES)
            .spawn(move || {
                let own = DataTree::clone(&tree);
                drop(tree);
                if let Some(b) = local_broadcast {
                    glommio::spawn_local(broadcast::run_broadcast(b)).detach();
                }
                shard::run_shard(shard::ShardSetup {
                    id: shard,
                    cfg,
                    tree: own,
                    released,
                    listener: listener_fd,
                    secure_listener: secure_listener.map(|fd| (fd, tls.expect("a secure port has its TLS configuration"))),
                    metrics_listener,
                    admin_listener,
                    to_broadcast,
                    from_broadcast,
                    conn_limits,
                })
            })
            .map_err(|e| format!("cannot start shard {shard} on cpu {cpu}: {e}"))?;
        handles.push(handle);
    }
    drop(tree);
    if let Some(b) = broadcast {
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpus[0]))
            .name("keeper-broadcast")
            .io_memory(EXECUTOR_IO_MEMORY_BYTES)
            .spawn(move || broadcast::run_broadcast(b))
            .map_err(|e| format!("cannot start the broadcast core on cpu {}: {e}", cpus[0]))?;
        handles.push(handle);
    }
    let broadcast_core = if cfg.shared_broadcast { "the broadcast loop on shard 0's core" } else { "a broadcast core" };
    let addrs: Vec<String> =
        [cfg.plain_clients.then(|| cfg.client_addr.to_string()), cfg.secure_client_addr.map(|a| format!("{a} (TLS)"))].into_iter().flatten().collect();
    tracing::info!("serving on {} with {} shard core(s) and {broadcast_core} (cpus {:?})", addrs.join(" and "), cfg.shards, cpus);
    sd_notify::notify("READY=1");
    for h in handles {
        h.join().map_err(|e| format!("a core failed: {e}"))?;
    }
    Ok(())
}
