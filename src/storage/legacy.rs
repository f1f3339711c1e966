//! Logs written before replication: record format V1, segments
//! `txnlog.<first zxid>` holding transactions keyed by zxid. keeper reads
//! them at start-up (they continue the history of the snapshot they follow)
//! and never writes them; the raft log (V2) picks up where they end, at
//! index 1. `keeper purge` removes them once a kept snapshot was taken
//! after them.

use super::log::LogError;
use super::record::Format;
use super::segment::{self, SegmentFile};
use crate::core::txn::Txn;
use crate::core::zxid::Zxid;
use std::path::Path;

/// What the legacy log held.
#[derive(Debug, Default)]
pub struct Legacy {
    /// Its segments, oldest first.
    pub segments: Vec<SegmentFile>,
    /// The zxid of its last transaction (0 with none).
    pub last_zxid: Zxid,
    /// Transactions replayed (those after the caller's snapshot).
    pub replayed: u64,
}

/// Replays every legacy transaction after `after_zxid`, in order. A torn
/// tail of the last segment is cut (zeroed) only while no raft log follows
/// it (`last_written`): once one does, the legacy log is complete and any
/// damage in it is corruption.
pub fn replay(dir: &Path, after_zxid: Zxid, last_written: bool, mut visit: impl FnMut(Txn)) -> Result<Legacy, LogError> {
    let mut segments = segment::list(dir, Format::V1)?;
    if last_written {
        segment::remove_unborn(&mut segments)?;
    }
    let mut legacy = Legacy { last_zxid: Zxid::ZERO, replayed: 0, segments: Vec::new() };
    for (i, seg) in segments.iter().enumerate() {
        // A segment followed by one starting at or before `after_zxid + 1`
        // holds only transactions the caller already has: skip it (but never
        // the second-last one, whose successor may be empty after a crash).
        if i + 2 < segments.len() && segments[i + 1].first <= after_zxid.next().raw() as u64 {
            continue;
        }
        let is_last = last_written && i + 1 == segments.len();
        let (end, last, torn) = segment::read_records(seg, is_last, legacy.last_zxid.raw() as u64, |r| {
            let zxid = Zxid::from_raw(r.key as i64);
            if zxid <= after_zxid {
                return Ok(());
            }
            let corrupt = |why: String| LogError::Corrupt { file: seg.path.clone(), offset: r.offset, why };
            let txn = Txn::from_bytes(r.payload).map_err(|e| corrupt(format!("record does not decode: {e}")))?;
            if txn.zxid != zxid {
                return Err(corrupt(format!("record zxid {zxid} holds transaction {}", txn.zxid)));
            }
            visit(txn);
            legacy.replayed += 1;
            Ok(())
        })?;
        if torn {
            segment::open_for_append(seg, end)?;
        }
        legacy.last_zxid = Zxid::from_raw(last as i64);
    }
    legacy.segments = segments;
    Ok(legacy)
}
