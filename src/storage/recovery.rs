//! Start-up recovery: the newest valid snapshot, then the log after it.
//!
//! Rules (never skip committed data silently):
//! - snapshots are tried newest first; an invalid one is reported and the next
//!   older one tried;
//! - the log must cover every transaction after the chosen snapshot: its first
//!   segment must start at or before `snapshot zxid + 1`;
//! - if every snapshot is invalid (or there is none), recovery starts from the
//!   empty tree only when the log's first segment is marked as the start of
//!   the server's history (nothing was ever purged before it);
//! - otherwise start-up stops, naming the file and offset that failed.

use super::log::{self, Log, LogError, Recovery, TxnLog};
use super::snapshot::{self, SnapshotFile};
use crate::core::tree::DataTree;
use crate::core::zxid::Zxid;
use std::path::Path;

/// What recovery found, for the start-up log line.
#[derive(Debug)]
pub struct Recovered {
    pub snapshot: Option<SnapshotFile>,
    pub log: Recovery,
}

/// Loads the newest usable snapshot and replays the log after it.
pub fn recover(snap_dir: &Path, log_dir: &Path, segment_bytes: usize) -> Result<(DataTree, TxnLog, Recovered), String> {
    std::fs::create_dir_all(snap_dir).map_err(|e| format!("cannot create {}: {e}", snap_dir.display()))?;
    remove_temporaries(snap_dir);
    let snaps = snapshot::list(snap_dir).map_err(|e| format!("cannot list {}: {e}", snap_dir.display()))?;
    let segments = log::list_segments(log_dir).map_err(|e| e.to_string())?;
    let log_start = segments.first().map(|s| s.first_zxid);
    let covers = |zxid: Zxid| log_start.is_none_or(|first| first <= zxid.next());
    let mut skipped = Vec::new();
    let mut chosen: Option<(DataTree, SnapshotFile)> = None;
    for file in snaps.iter().rev() {
        match snapshot::load(file) {
            Ok(tree) if covers(file.zxid) => {
                chosen = Some((tree, file.clone()));
                break;
            }
            Ok(_) => {
                skipped.push(format!("snapshot {} is valid but the log starts at zxid {}, after it", file.path.display(), log_start.unwrap_or(Zxid::ZERO)))
            }
            Err(e) => skipped.push(e.to_string()),
        }
    }
    if chosen.is_none() {
        let from_the_start = match segments.first() {
            None => snaps.is_empty(),
            Some(first) => log::is_genesis(first).map_err(|e| e.to_string())?,
        };
        if !from_the_start {
            skipped.push(format!("the log in {} does not reach back to the first transaction", log_dir.display()));
            return Err(format!(
                "no usable snapshot, and the log alone does not hold the whole history; refusing to start with missing data:\n  {}",
                skipped.join("\n  ")
            ));
        }
    }
    for why in &skipped {
        eprintln!("keeper: warning: {why}; trying an older state");
    }
    let (mut tree, snapshot) = match chosen {
        Some((tree, file)) => (tree, Some(file)),
        None => (DataTree::new(), None),
    };
    let after = tree.last_zxid();
    let (log, report) = TxnLog::open(log_dir, segment_bytes, after, |txn| {
        tree.apply(&txn);
    })
    .map_err(|e: LogError| e.to_string())?;
    if log.last_zxid() < tree.last_zxid() {
        eprintln!("keeper: warning: the log ends at zxid {}, before the snapshot's {}", log.last_zxid(), tree.last_zxid());
    }
    Ok((tree, log, Recovered { snapshot, log: report }))
}

/// Deletes `*.tmp` files a crash left behind while writing a snapshot.
fn remove_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(|n| n.starts_with("snapshot.") && n.ends_with(".tmp")) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
