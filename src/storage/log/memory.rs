//! The log in memory, for tests and the simulator: the same contract as the
//! segment files, with durability decided by the caller. A persist job
//! does nothing when run; what counts is whether the caller finished it
//! before [`MemLog::crash`], which keeps only what was persisted, as a
//! power cut keeps only what was synced.

use super::{HardState, Log, LogError, PersistWork};
use raft::prelude::Entry;

/// An in-memory log.
#[derive(Debug, Default)]
pub struct MemLog {
    entries: Vec<Entry>,
    persisted: u64,
    hard: HardState,
    persisting: bool,
}

/// A persist of a [`MemLog`]: durable once finished.
#[derive(Debug)]
pub struct MemPersist {
    up_to: u64,
    hard_state: Option<HardState>,
}

impl PersistWork for MemPersist {
    fn up_to(&self) -> u64 {
        self.up_to
    }

    fn run(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MemLog {
    /// The log restarts after a snapshot at `index` (durably, as the file
    /// log's `reset_to`): every entry goes, and the next is `index + 1`.
    pub fn reset_to(&mut self, index: u64) {
        assert!(!self.persisting, "no reset while a persist is in flight");
        self.entries.clear();
        self.persisted = index;
        debug_assert_eq!(self.last_index(), index);
    }

    /// A log found on restart: `entries` (following index `base`) all
    /// durable, and the hard state last made durable.
    pub fn recovered(base: u64, entries: Vec<Entry>, hard: HardState) -> MemLog {
        debug_assert!(entries.iter().enumerate().all(|(i, e)| e.index == base + 1 + i as u64), "entries continue from the base");
        let persisted = entries.last().map_or(base, |e| e.index);
        MemLog { entries, persisted, hard, persisting: false }
    }

    /// Loses everything not persisted, as a crash does. A persist in
    /// flight is lost with it.
    pub fn crash(&mut self) {
        let persisted = self.persisted;
        self.entries.retain(|e| e.index <= persisted);
        self.persisting = false;
        debug_assert_eq!(self.last_index(), persisted, "after a crash the log ends where it was durable");
    }
}

impl Log for MemLog {
    type Persist = MemPersist;

    fn append(&mut self, entry: &Entry) {
        assert_eq!(entry.index, self.last_index() + 1, "log appends continue the log");
        self.entries.push(entry.clone());
    }

    fn start_persist(&mut self, hard_state: Option<HardState>) -> Result<Option<MemPersist>, LogError> {
        assert!(!self.persisting, "one persist at a time");
        let up_to = self.last_index();
        if up_to == self.persisted && hard_state.is_none() {
            return Ok(None);
        }
        self.persisting = true;
        Ok(Some(MemPersist { up_to, hard_state }))
    }

    fn finish_persist(&mut self, job: MemPersist) {
        assert!(self.persisting, "a persist was started");
        assert!(job.up_to <= self.last_index(), "a persist covers appended entries only");
        self.persisting = false;
        self.persisted = self.persisted.max(job.up_to);
        if let Some(hard) = job.hard_state {
            self.hard = hard;
        }
    }

    fn last_index(&self) -> u64 {
        self.entries.last().map_or(self.persisted, |e| e.index)
    }

    fn persisted_index(&self) -> u64 {
        self.persisted
    }

    fn truncate_after(&mut self, index: u64) -> Result<(), LogError> {
        assert!(!self.persisting, "no truncation while a persist is in flight");
        self.entries.retain(|e| e.index <= index);
        self.persisted = self.persisted.min(index);
        debug_assert!(self.last_index() <= index);
        Ok(())
    }

    fn read(&self, after: u64, up_to: u64) -> Result<Vec<Entry>, LogError> {
        let start = self.entries.partition_point(|e| e.index <= after);
        Ok(self.entries[start..].iter().take_while(|e| e.index <= up_to).cloned().collect())
    }

    fn hard_state(&self) -> HardState {
        self.hard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64) -> Entry {
        Entry { index, term: 1, data: vec![index as u8].into(), ..Default::default() }
    }

    #[test]
    fn a_crash_keeps_only_what_was_persisted() {
        let mut log = MemLog::default();
        log.append(&entry(1));
        log.append(&entry(2));
        let job = log.start_persist(None).unwrap().unwrap();
        log.finish_persist(job);
        log.append(&entry(3));
        let _in_flight = log.start_persist(None).unwrap().unwrap();
        log.crash();
        assert_eq!(log.last_index(), 2);
        assert_eq!(log.read(0, 9).unwrap().len(), 2);
        log.append(&entry(3));
    }
}
