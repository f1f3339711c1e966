//! What a crash leaves of a server's log, as the bytes of a real log
//! segment, and the real reader that takes them back on restart.
//!
//! A crash keeps every synced entry, and may keep more: unsynced writes the
//! page cache happened to flush, the last of them torn part-way. A disk
//! fault may also flip a bit in a synced record. The restarted server reads
//! the segment with the same reader as a real one (the torn-tail rule of
//! `storage::segment`): a torn tail is cut, damage with a valid record
//! after it is corruption and stops the server, and nothing damaged is ever
//! handed back as an entry.

use super::rng::Rng;
use crate::storage::log::{HardState, Log, LogError, MemLog, entry_of_record, write_entry_payload};
use crate::storage::record::{self, Format, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::storage::segment::{self, SegmentFile};
use raft::prelude::Entry;

/// A crashed server's log on its disk.
#[derive(Debug)]
pub struct Image {
    /// One V2 segment: its header, records and zero fill.
    bytes: Vec<u8>,
    /// The index before the segment's first record (the snapshot's).
    base: u64,
    hard: HardState,
    /// The synced entries, as they were written (what a read must give back).
    synced: Vec<Entry>,
    /// Where each record starts, with its index.
    records: Vec<(usize, u64)>,
    /// A bit was flipped at this offset.
    pub flipped: Option<usize>,
}

/// Zero bytes after the last record: the rest of a preallocated segment.
const ZERO_FILL: usize = 64;

impl Image {
    /// What a crash leaves of `log` (whose entries follow index `base`):
    /// its synced entries and hard state, then `written` of its unsynced
    /// entries, and of the next one the first `torn` bytes, if any.
    pub fn after_crash(log: &MemLog, base: u64, written: usize, torn: Option<usize>) -> Image {
        let entries = log.read(base, log.last_index()).expect("the memory log reads");
        let synced_to = log.persisted_index();
        let synced: Vec<Entry> = entries.iter().take_while(|e| e.index <= synced_to).cloned().collect();
        let kept = synced.len() + written;
        let mut bytes = vec![0; SEGMENT_HEADER_LEN];
        record::write_segment_header(&mut bytes, SegmentHeader { format: Format::V2, first: base + 1, genesis: base == 0 });
        let mut records = Vec::new();
        for (i, e) in entries.iter().enumerate().take(kept + usize::from(torn.is_some())) {
            let payload_len = 1 + e.data.len();
            let at = bytes.len();
            bytes.resize(at + Format::V2.record_len(payload_len), 0);
            record::write_record_with(Format::V2, &mut bytes[at..], e.index, e.term, payload_len, |payload| write_entry_payload(e, payload));
            if i == kept {
                // The torn write: only its first bytes reached the disk.
                let cut = at + torn.expect("only the torn record follows the kept ones").min(bytes.len() - at);
                bytes[cut..].fill(0);
            } else {
                records.push((at, e.index));
            }
        }
        bytes.resize(bytes.len() + ZERO_FILL, 0);
        Image { bytes, base, hard: log.hard_state(), synced, records, flipped: None }
    }

    /// Flips one bit in a synced record that has another record after it
    /// (damage at the very end would be a torn tail, indistinguishable
    /// from a crash); false if there is no such record.
    pub fn flip_a_bit(&mut self, rng: &mut Rng) -> bool {
        let synced = self.records.iter().filter(|(_, index)| self.synced.last().is_some_and(|last| *index <= last.index)).count();
        if synced < 2 {
            return false;
        }
        let which = rng.range(0, synced as u64 - 1) as usize;
        let (start, end) = (self.records[which].0, self.records[which + 1].0);
        let at = rng.range(start as u64, end as u64) as usize;
        self.bytes[at] ^= 1 << rng.range(0, 8);
        self.flipped = Some(at);
        true
    }

    /// Reads the log back as a restarted server does: the log it finds,
    /// or the corruption that stops it. A read that succeeds gives back
    /// every synced entry as written, whatever the disk did.
    pub fn recover(&self) -> Result<MemLog, LogError> {
        let seg = SegmentFile { path: format!("sim/raftlog.{}", self.base + 1).into(), format: Format::V2, first: self.base + 1 };
        let mut entries = Vec::new();
        segment::read_records_in(&self.bytes, &seg, true, self.base, |r| {
            let entry = entry_of_record(r.key, r.term, r.payload).map_err(|why| LogError::Corrupt { file: seg.path.clone(), offset: r.offset, why })?;
            entries.push(entry);
            Ok(())
        })?;
        let read_back = entries.iter().take(self.synced.len());
        assert!(
            entries.len() >= self.synced.len() && read_back.zip(&self.synced).all(|(a, b)| a == b),
            "a log read back without an error gives back every synced entry as written"
        );
        Ok(MemLog::recovered(self.base, entries, self.hard))
    }
}
