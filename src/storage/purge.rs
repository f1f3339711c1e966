//! Retention: keep the newest N valid snapshots and the log segments they
//! need; delete older files (ZooKeeper's `PurgeTxnLog`).
//!
//! A raft log segment is deleted only when the next segment starts at or
//! before `oldest kept snapshot's raft index + 1`: everything in it is then
//! inside every kept snapshot. Legacy segments (written before replication)
//! are deleted the same way by zxid, and all of them once the oldest kept
//! snapshot was taken after replication began. The newest segment of each
//! log is never deleted. Snapshots that fail validation do not count
//! towards N and are never what makes older files deletable.

use super::record::Format;
use super::segment::{self, SegmentFile};
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
        if let Ok(info) = snapshot::read(file, &mut snapshot::Validate) {
            valid.push(info);
        }
    }
    let mut purged = Purged::default();
    if valid.len() < retain {
        return Ok(purged);
    }
    let oldest_kept = *valid.last().expect("retain >= 1");
    for file in snaps.iter().filter(|s| s.zxid < oldest_kept.zxid) {
        std::fs::remove_file(&file.path).map_err(|e| format!("cannot delete {}: {e}", file.path.display()))?;
        purged.snapshots.push(file.path.clone());
    }
    let raft_covered = oldest_kept.position.index + 1;
    let legacy_covered = if oldest_kept.position.index > 0 { u64::MAX } else { oldest_kept.zxid.next().raw() as u64 };
    for (format, covered) in [(Format::V1, legacy_covered), (Format::V2, raft_covered)] {
        let segments = segment::list(log_dir, format).map_err(|e| e.to_string())?;
        for pair in segments.windows(2) {
            if pair[1].first <= covered {
                remove(&pair[0], &mut purged)?;
            }
        }
        // Once a kept snapshot holds all of the legacy log, its last segment goes too.
        if format == Format::V1
            && covered == u64::MAX
            && let Some(last) = segments.last()
        {
            remove(last, &mut purged)?;
        }
    }
    Ok(purged)
}

fn remove(seg: &SegmentFile, purged: &mut Purged) -> Result<(), String> {
    std::fs::remove_file(&seg.path).map_err(|e| format!("cannot delete {}: {e}", seg.path.display()))?;
    purged.segments.push(seg.path.clone());
    Ok(())
}
