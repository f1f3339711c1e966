//! The log in memory, for tests and the simulator: the same contract as the
//! segment files, with durability decided by the caller. A persist job
//! does nothing when run; what counts is whether the caller finished it
//! before [`MemLog::crash`], which keeps only what was persisted, as a
//! power cut keeps only what was synced.

use super::{HardState, Log, LogError, LogRecord, PersistWork};
use crate::core::zxid::Zxid;

/// An in-memory log.
#[derive(Debug, Default)]
pub struct MemLog {
    records: Vec<LogRecord>,
    persisted: Zxid,
    hard: HardState,
    persisting: bool,
}

/// A persist of a [`MemLog`]: durable once finished.
#[derive(Debug)]
pub struct MemPersist {
    up_to: Zxid,
}

impl PersistWork for MemPersist {
    fn up_to(&self) -> Zxid {
        self.up_to
    }

    fn run(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MemLog {
    /// Loses everything not persisted, as a crash does. A persist in
    /// flight is lost with it.
    pub fn crash(&mut self) {
        let persisted = self.persisted;
        self.records.retain(|r| r.zxid <= persisted);
        self.persisting = false;
        debug_assert_eq!(self.last_zxid(), persisted, "after a crash the log ends where it was durable");
    }
}

impl Log for MemLog {
    type Persist = MemPersist;

    fn append(&mut self, zxid: Zxid, payload: &[u8]) {
        assert!(zxid > self.last_zxid(), "log appends in zxid order: {zxid} after {}", self.last_zxid());
        self.records.push(LogRecord { zxid, payload: payload.to_vec() });
    }

    fn start_persist(&mut self) -> Result<Option<MemPersist>, LogError> {
        assert!(!self.persisting, "one persist at a time");
        let up_to = self.last_zxid();
        if up_to == self.persisted {
            return Ok(None);
        }
        self.persisting = true;
        Ok(Some(MemPersist { up_to }))
    }

    fn finish_persist(&mut self, job: MemPersist) {
        assert!(self.persisting, "a persist was started");
        assert!(job.up_to <= self.last_zxid(), "a persist covers appended records only");
        self.persisting = false;
        self.persisted = self.persisted.max(job.up_to);
    }

    fn last_zxid(&self) -> Zxid {
        self.records.last().map_or(self.persisted, |r| r.zxid)
    }

    fn persisted_zxid(&self) -> Zxid {
        self.persisted
    }

    fn truncate_after(&mut self, zxid: Zxid) -> Result<(), LogError> {
        assert!(!self.persisting, "no truncation while a persist is in flight");
        self.records.retain(|r| r.zxid <= zxid);
        self.persisted = self.persisted.min(zxid);
        debug_assert!(self.last_zxid() <= zxid);
        Ok(())
    }

    fn read(&self, after: Zxid, up_to: Zxid) -> Result<Vec<LogRecord>, LogError> {
        let start = self.records.partition_point(|r| r.zxid <= after);
        Ok(self.records[start..].iter().take_while(|r| r.zxid <= up_to).cloned().collect())
    }

    fn hard_state(&self) -> HardState {
        self.hard
    }

    fn set_hard_state(&mut self, state: HardState) -> Result<(), LogError> {
        assert!(!self.persisting, "hard state changes between persists");
        self.hard = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_keeps_only_what_was_persisted() {
        let mut log = MemLog::default();
        log.append(Zxid::from_raw(1), b"a");
        log.append(Zxid::from_raw(2), b"b");
        let job = log.start_persist().unwrap().unwrap();
        log.finish_persist(job);
        log.append(Zxid::from_raw(3), b"c");
        let _in_flight = log.start_persist().unwrap().unwrap();
        log.crash();
        assert_eq!(log.last_zxid(), Zxid::from_raw(2));
        assert_eq!(log.read(Zxid::ZERO, Zxid::from_raw(9)).unwrap().len(), 2);
        log.append(Zxid::from_raw(3), b"c again");
    }
}
