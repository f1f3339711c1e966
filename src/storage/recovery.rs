//! Start-up recovery: the newest usable snapshot, then the logs after it.
//!
//! History is, in order: a snapshot (or the empty tree), the legacy log
//! (record format V1, written before replication; only for a snapshot taken
//! before it ended), then the raft log (V2) from the entry after the
//! snapshot's raft position. The raft entries known committed are applied
//! to the tree: up to the hard state's commit index, or every durable entry
//! when this server is the only voter (its own durable entries are
//! committed). The rest are handed back for the consensus node, which
//! commits or replaces them.
//!
//! Rules (never skip committed data silently):
//! - snapshots are tried newest first; an invalid one is reported and the
//!   next older one tried;
//! - the logs must cover everything after the chosen snapshot;
//! - with no usable snapshot, recovery starts from the empty tree only when
//!   the logs reach back to the first transaction (their first segments are
//!   marked as the start of the server's history);
//! - otherwise start-up stops, naming the file and offset that failed.

use super::legacy;
use super::log::{Log, LogError, Recovery, TxnLog};
use super::record::Format;
use super::segment::{self, SegmentFile};
use super::snapshot::{self, SnapshotFile};
use crate::core::consensus::LogPosition;
use crate::core::tree::DataTree;
use crate::core::txn::Txn;
use raft::prelude::{Entry, EntryType};
use std::path::Path;

/// What recovery found besides the tree.
pub struct Recovered {
    /// The raft log, positioned for appending.
    pub log: TxnLog,
    /// The snapshot it started from, if any.
    pub snapshot: Option<SnapshotFile>,
    /// The raft position of that snapshot ((0, 0) for none, or one from before replication).
    pub base: LogPosition,
    /// Every raft entry after `base`, applied or not, in order.
    pub entries: Vec<Entry>,
    /// The index of the last entry applied to the tree.
    pub applied: u64,
    /// Legacy transactions replayed.
    pub legacy_replayed: u64,
    /// What reading the raft log found.
    pub report: Recovery,
}

/// Whether the first segment of a log, if any, starts the server's history.
fn starts_history(segments: &[SegmentFile]) -> Result<bool, String> {
    segments.first().map_or(Ok(true), |first| segment::is_genesis(first).map_err(|e| e.to_string()))
}

/// Loads the newest usable snapshot and replays the logs after it: the
/// tree, with every committed entry applied, and the rest. With
/// `only_voter`, every durable raft entry counts as committed.
pub fn recover(snap_dir: &Path, log_dir: &Path, segment_bytes: usize, only_voter: bool) -> Result<(DataTree, Recovered), String> {
    std::fs::create_dir_all(snap_dir).map_err(|e| format!("cannot create {}: {e}", snap_dir.display()))?;
    remove_temporaries(snap_dir);
    let snaps = snapshot::list(snap_dir).map_err(|e| format!("cannot list {}: {e}", snap_dir.display()))?;
    let v1 = segment::list(log_dir, Format::V1).map_err(|e| e.to_string())?;
    let v2 = segment::list(log_dir, Format::V2).map_err(|e| e.to_string())?;
    // What a snapshot at (zxid, position) needs: the logs continue right after it.
    let covers = |zxid: i64, position: LogPosition| -> bool {
        let raft_covers = v2.first().is_none_or(|first| first.first <= position.index + 1);
        let legacy_covers = position.index > 0 || v1.first().is_none_or(|first| first.first as i64 <= zxid + 1);
        raft_covers && legacy_covers
    };
    let mut skipped = Vec::new();
    let mut chosen: Option<(DataTree, LogPosition, SnapshotFile)> = None;
    for file in snaps.iter().rev() {
        match snapshot::load(file) {
            Ok((tree, position)) if covers(file.zxid.raw(), position) => {
                chosen = Some((tree, position, file.clone()));
                break;
            }
            Ok(_) => skipped.push(format!("snapshot {} is valid but the log does not continue right after it", file.path.display())),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    if chosen.is_none() {
        let from_the_start = match (v1.is_empty(), v2.is_empty()) {
            (true, true) => snaps.is_empty(),
            (false, _) => starts_history(&v1)? && v2.first().is_none_or(|first| first.first == 1),
            (true, false) => starts_history(&v2)?,
        };
        if !from_the_start {
            skipped.push(format!("the logs in {} do not reach back to the first transaction", log_dir.display()));
            return Err(format!(
                "no usable snapshot, and the logs alone do not hold the whole history; refusing to start with missing data:\n  {}",
                skipped.join("\n  ")
            ));
        }
    }
    for why in &skipped {
        tracing::warn!("{why}; trying an older state");
    }
    let (mut tree, base, snapshot) = match chosen {
        Some((tree, position, file)) => (tree, position, Some(file)),
        None => (DataTree::new(), LogPosition::default(), None),
    };
    let mut legacy_replayed = 0;
    if base.index == 0 {
        let legacy = legacy::replay(log_dir, tree.last_zxid(), v2.is_empty(), |txn| {
            tree.apply(&txn);
        })
        .map_err(|e| e.to_string())?;
        legacy_replayed = legacy.replayed;
    }
    let mut entries = Vec::new();
    // A raft log begun now starts the server's history only if nothing came before it.
    let history_starts_here = base.index == 0 && tree.last_zxid() == crate::core::zxid::Zxid::ZERO;
    let (mut log, report) = TxnLog::open(log_dir, segment_bytes, base.index, history_starts_here, |e| entries.push(e)).map_err(|e: LogError| e.to_string())?;
    if log.last_index() < base.index {
        // A snapshot from the leader replaced this server's state and the
        // server stopped before its old log was emptied: empty it now.
        log.reset_to(base.index).map_err(|e| e.to_string())?;
    }
    let committed = if only_voter { log.last_index() } else { log.hard_state().commit.min(log.last_index()) };
    let mut applied = base.index;
    for entry in entries.iter().take_while(|e| e.index <= committed) {
        apply_entry(&mut tree, entry)?;
        applied = entry.index;
    }
    Ok((tree, Recovered { log, snapshot, base, entries, applied, legacy_replayed, report }))
}

/// Applies a committed raft entry to the tree: a transaction, or nothing
/// for a leader's no-op.
pub fn apply_entry(tree: &mut DataTree, entry: &Entry) -> Result<(), String> {
    if entry.entry_type != EntryType::EntryNormal || entry.data.is_empty() {
        return Ok(());
    }
    let txn = Txn::from_bytes(&entry.data).map_err(|e| format!("raft entry {} does not hold a transaction: {e}", entry.index))?;
    tree.apply(&txn);
    Ok(())
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
