//! `keeper import`: a keeper data directory from Apache ZooKeeper's.
//!
//! Reads ZooKeeper's newest valid snapshot and the transaction logs after
//! it ([`crate::storage::zookeeper`]), and writes the same tree (paths,
//! data, ACLs, stats, zxids, and live sessions with their ephemerals) as a
//! keeper snapshot. ZooKeeper's zxid epoch becomes keeper's raft term (a
//! hard state is written), so the first leader's zxids come after every
//! imported one and clients that saw ZooKeeper's zxids can reconnect.
//!
//! Nothing is written until the whole ZooKeeper directory has been read and
//! checked, the target is locked as a server locks it, and a target that
//! already holds keeper data is refused. The snapshot and the hard state are
//! each written to a temporary file, synced and renamed into place, the
//! hard state first: an import cut short leaves no snapshot, and may simply
//! be run again.

use crate::core::consensus::LogPosition;
use crate::storage::log::{DATA_SUBDIR, HardState, hard_state};
use crate::storage::{lock, snapshot, zookeeper};
use std::path::{Path, PathBuf};

/// Files a keeper directory may hold and still take an import: the lock,
/// and what an interrupted import leaves.
fn leftover_of_import(name: &str) -> bool {
    name == lock::LOCK_FILE || name == hard_state::FILE || name.ends_with(".tmp")
}

/// Refuses a keeper directory that holds data of its own.
fn check_empty(dir: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let name = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?.file_name();
        let name = name.to_string_lossy();
        if !leftover_of_import(&name) {
            return Err(format!(
                "{} already holds keeper data ({name}); import only into a new data directory, so that nothing there is overwritten",
                dir.display()
            ));
        }
    }
    Ok(())
}

/// Imports ZooKeeper's `zk_data` (snapshots) and `zk_log` (logs) into the
/// keeper dataDir `data` and dataLogDir `data_log`; prints what it did. On
/// failure, the directories it created are removed again.
pub fn import(zk_data: &Path, zk_log: &Path, data: &Path, data_log: &Path) -> Result<(), String> {
    let (snap_dir, log_dir) = (data.join(DATA_SUBDIR), data_log.join(DATA_SUBDIR));
    let mut created: Vec<PathBuf> = Vec::new();
    for dir in [data, data_log, &snap_dir, &log_dir] {
        if !dir.exists() && !created.iter().any(|c| c == dir) {
            created.push(dir.to_path_buf());
        }
    }
    let result = import_into(zk_data, zk_log, &snap_dir, &log_dir);
    if result.is_err() {
        for dir in created.iter().rev() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    result.map(|_| println!("start keeper with dataDir={} to serve it", data.display()))
}

/// The import proper, into keeper's subdirectories.
fn import_into(zk_data: &Path, zk_log: &Path, snap_dir: &Path, log_dir: &Path) -> Result<(), String> {
    let mut locks = vec![lock::lock(snap_dir)?];
    if log_dir != snap_dir {
        locks.push(lock::lock(log_dir)?);
    }
    check_empty(snap_dir)?;
    check_empty(log_dir)?;
    let (zk_tree, report) = zookeeper::load(zk_data, zk_log).map_err(|e| format!("cannot import: {e}"))?;
    for skipped in &report.skipped_snapshots {
        eprintln!("keeper: skipped an invalid snapshot, as ZooKeeper would: {skipped}");
    }
    for tail in &report.partial_tails {
        eprintln!("keeper: {tail}: the log ends in a partial record, as after a crash (never acknowledged; ZooKeeper ignores it too)");
    }
    let (nodes, sessions) = zk_tree.counts();
    let tree = zk_tree.into_data_tree().map_err(|e| format!("cannot import {}: {e}", report.snapshot.display()))?;
    let zxid = tree.last_zxid();
    if zxid.epoch() > 0 {
        let state = HardState { term: zxid.epoch() as u64, vote: 0, commit: 0 };
        hard_state::write(log_dir, state).map_err(|e| format!("cannot write the hard state in {}: {e}", log_dir.display()))?;
    }
    let written = snapshot::write(&tree, LogPosition { index: 0, term: 0 }, snap_dir).map_err(|e| {
        let _ = std::fs::remove_file(log_dir.join(hard_state::FILE));
        format!("cannot write a snapshot in {}: {e}", snap_dir.display())
    })?;
    let logs: Vec<String> = report.logs.iter().map(|p| p.display().to_string()).collect();
    let listed = if logs.is_empty() { String::new() } else { format!(" ({})", logs.join(", ")) };
    println!("read {} and {} transactions from {} log file(s){listed}", report.snapshot.display(), report.txns_applied, logs.len());
    println!("wrote {} ({nodes} nodes, {sessions} sessions, zxid {zxid:#x})", written.path.display());
    drop(locks);
    Ok(())
}
