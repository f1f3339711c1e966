//! The raft log as raft-rs reads it: [`RaftStore`], an in-memory
//! `raft::Storage`. It holds every entry since the last compaction point,
//! the hard state and the membership. It is the sequencer's own copy; the
//! driver makes the same entries durable in the transaction log, and
//! raft-rs is told when they are (`on_persist_ready`).

use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use std::collections::VecDeque;

/// raft's log in memory: entries after `base`, hard state, membership.
#[derive(Debug, Default)]
pub struct RaftStore {
    hard: HardState,
    conf: ConfState,
    /// The index and term of the entry just before `entries[0]` (0, 0 at the start).
    base_index: u64,
    base_term: u64,
    /// A deque: compaction drops a few entries from the front after every
    /// commit, from a store that keeps thousands.
    entries: VecDeque<Entry>,
    /// The position of the last entry the sequencer applied: what a
    /// snapshot of its committed tree stands at.
    applied: (u64, u64),
}

impl RaftStore {
    /// A store for a member of `conf`, after the entry at (`base_index`,
    /// `base_term`) (0, 0 for an empty history), with the hard state last made durable.
    pub fn new(conf: ConfState, hard: HardState, base_index: u64, base_term: u64) -> RaftStore {
        assert!(hard.commit >= base_index, "the commit index is never below the base");
        RaftStore { hard, conf, base_index, base_term, entries: VecDeque::new(), applied: (base_index, base_term) }
    }

    /// The first index `entries` can return.
    pub fn first(&self) -> u64 {
        self.base_index + 1
    }

    /// The index of the last entry.
    pub fn last(&self) -> u64 {
        self.base_index + self.entries.len() as u64
    }

    /// Appends entries, dropping any existing entries from the first new
    /// index on (a conflicting suffix the leader overwrote).
    pub fn append(&mut self, entries: &[Entry]) {
        let Some(first_new) = entries.first() else { return };
        assert!(first_new.index > self.base_index, "entry {} is at or below the base {}", first_new.index, self.base_index);
        assert!(first_new.index <= self.last() + 1, "entries are contiguous: {} after {}", first_new.index, self.last());
        self.entries.truncate((first_new.index - self.first()) as usize);
        self.entries.extend(entries.iter().cloned());
        debug_assert!(self.entries.iter().zip(self.entries.iter().skip(1)).all(|(a, b)| b.index == a.index + 1), "indexes are contiguous");
    }

    /// Replaces the hard state.
    pub fn set_hard_state(&mut self, hard: HardState) {
        assert!(hard.term >= self.hard.term, "terms never go back: {} after {}", hard.term, self.hard.term);
        self.hard = hard;
    }

    /// The hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.hard
    }

    /// Drops every entry up to `index`, which must be applied (a snapshot holds them).
    pub fn compact(&mut self, index: u64) {
        if index <= self.base_index {
            return;
        }
        assert!(index <= self.last(), "cannot compact past the last entry");
        let drop = (index - self.base_index) as usize;
        self.base_term = self.entries[drop - 1].term;
        self.entries.drain(..drop);
        self.base_index = index;
        debug_assert_eq!(self.first(), index + 1);
    }

    /// The sequencer applied the entry at (`index`, `term`).
    pub fn set_applied(&mut self, index: u64, term: u64) {
        assert!(index >= self.applied.0, "applied entries only grow");
        self.applied = (index, term);
    }

    /// The log now starts after a snapshot at (`index`, `term`): every
    /// entry it held is dropped, and the commit index is at least `index`.
    pub fn apply_snapshot(&mut self, index: u64, term: u64) {
        self.entries.clear();
        self.base_index = index;
        self.base_term = term;
        self.applied = (index, term);
        self.hard.commit = self.hard.commit.max(index);
        debug_assert_eq!((self.first(), self.last()), (index + 1, index));
    }

    /// The entry at `index`, if the store holds it.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        index.checked_sub(self.first()).and_then(|i| self.entries.get(i as usize))
    }
}

impl Storage for RaftStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.hard.clone(), self.conf.clone()))
    }

    fn entries(&self, low: u64, high: u64, max_size: impl Into<Option<u64>>, _context: GetEntriesContext) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        assert!(high <= self.last() + 1, "entries up to {high} asked of a log ending at {}", self.last());
        let mut out: Vec<Entry> = self.entries.range((low - self.first()) as usize..(high - self.first()) as usize).cloned().collect();
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        if index == self.base_index {
            return Ok(self.base_term);
        }
        if index < self.base_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.entry(index).map(|e| e.term).ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    /// A snapshot of what the sequencer applied: its metadata only. The
    /// data (the committed tree, written as a snapshot file) travels apart,
    /// in chunks ahead of the raft message (see the sequencer).
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.applied.0 < request_index {
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        let mut snap = Snapshot::default();
        let meta: &mut SnapshotMetadata = snap.mut_metadata();
        meta.index = self.applied.0;
        meta.term = self.applied.1;
        meta.set_conf_state(self.conf.clone());
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index, term, ..Default::default() }
    }

    #[test]
    fn appends_overwrite_a_conflicting_suffix_and_compaction_keeps_the_base_term() {
        let mut s = RaftStore::new(ConfState::from((vec![1, 2, 3], vec![])), HardState::default(), 0, 0);
        s.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]);
        s.append(&[entry(3, 2), entry(4, 2)]);
        assert_eq!((s.first(), s.last()), (1, 4));
        assert_eq!(s.term(3).unwrap(), 2, "the leader's entry replaced the old one");
        s.compact(2);
        assert_eq!((s.first_index().unwrap(), s.term(2).unwrap()), (3, 1));
        assert!(matches!(s.term(1), Err(raft::Error::Store(StorageError::Compacted))));
        assert_eq!(s.entries(3, 5, None, GetEntriesContext::empty(false)).unwrap().len(), 2);
    }
}
