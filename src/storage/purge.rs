//! Retention: keep the newest N valid snapshots and the log segments they
//! need; delete older files (ZooKeeper's `PurgeTxnLog`).
//!
//! A log segment is deleted only when the next segment starts at or before
//! `oldest kept snapshot zxid + 1`: everything in it is then inside every
//! kept snapshot. The newest segment is never deleted. Snapshots that fail
//! validation do not count towards N and are never what makes older files
//! deletable.

use super::log;
use super::snapshot;
use std::path::{Path, PathBuf};

/// What a purge removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub snapshots: Vec<PathBuf>,
    pub segments: Vec<PathBuf>,
}

/// Deletes what the newest `retain` valid snapshots do not need.
pub fn purge(snap_dir: &Path, log_dir: &Path, retain: usize) -> Result<Purged, String> {
    assert!(retain >= 1, "at least one snapshot is always kept");
    let snaps = snapshot::list(snap_dir).map_err(|e| format!("cannot list {}: {e}", snap_dir.display()))?;
    let mut valid = Vec::new();
    for file in snaps.iter().rev() {
        if valid.len() == retain {
            break;
        }
        if snapshot::read(file, &mut snapshot::Validate).is_ok() {
            valid.push(file.clone());
        }
    }
    let mut purged = Purged::default();
    if valid.len() < retain {
        return Ok(purged);
    }
    let oldest_kept = valid.last().expect("retain >= 1").zxid;
    for file in snaps.iter().filter(|s| s.zxid < oldest_kept) {
        std::fs::remove_file(&file.path).map_err(|e| format!("cannot delete {}: {e}", file.path.display()))?;
        purged.snapshots.push(file.path.clone());
    }
    let segments = log::list_segments(log_dir).map_err(|e| e.to_string())?;
    for pair in segments.windows(2) {
        if pair[1].first_zxid <= oldest_kept.next() {
            std::fs::remove_file(&pair[0].path).map_err(|e| format!("cannot delete {}: {e}", pair[0].path.display()))?;
            purged.segments.push(pair[0].path.clone());
        }
    }
    Ok(purged)
}
