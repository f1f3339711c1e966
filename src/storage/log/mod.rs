//! The raft log behind one narrow interface, [`Log`], with two
//! implementations: [`TxnLog`], preallocated segment files (what servers
//! run on), and [`MemLog`], in memory (tests and the simulator, where the
//! caller decides which persists complete before a crash).
//!
//! The log holds raft entries, by index: a transaction (its rkyv bytes) or
//! a leader's no-op. The interface is what a broadcast core driving a
//! consensus node needs of its log: append entries in index order, make
//! them durable in groups (one persist covers everything appended before
//! it started, and runs while new entries keep being appended), cut a
//! suffix, read a range back, and keep the small hard state a consensus
//! engine must not lose.
//!
//! Contract, for every implementation:
//! - `append` takes the next index (last + 1) and does no I/O;
//! - at most one persist job is in flight: `start_persist` hands it out,
//!   the caller runs it (`PersistWork::run`, or its own equivalent), then
//!   gives it back to `finish_persist`; only then is `persisted_index`
//!   raised. A persist given a hard state makes it durable before anything
//!   else of the persist;
//! - `truncate_after` is durable when it returns and is never called while
//!   a persist is in flight.

mod file;
pub mod hard_state;
mod memory;

pub use file::{DATA_SUBDIR, PersistJob, Recovery, TxnLog};
pub use memory::{MemLog, MemPersist};

use crate::storage::segment::io_err;
use raft::prelude::{Entry, EntryType};
use std::io;
use std::path::PathBuf;

/// What a consensus engine must find again after a restart: the current
/// term, the vote cast in it and the highest index known committed (raft's
/// `HardState`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
}

/// Why the log could not be opened or written.
#[derive(Debug)]
pub enum LogError {
    /// An I/O call failed.
    Io { what: String, err: io::Error },
    /// Committed data is damaged; start-up must stop.
    Corrupt { file: PathBuf, offset: usize, why: String },
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::Io { what, err } => write!(f, "{what}: {err}"),
            LogError::Corrupt { file, offset, why } => {
                write!(f, "transaction log {} is corrupt at offset {offset}: {why}; refusing to start (no committed data is skipped)", file.display())
            }
        }
    }
}

impl std::error::Error for LogError {}

/// The I/O of one persist, run by the caller on a thread that may block.
pub trait PersistWork {
    /// The last index this persist makes durable.
    fn up_to(&self) -> u64;
    /// Does the I/O.
    fn run(&mut self) -> io::Result<()>;
}

/// A raft log: see the module documentation for the contract.
pub trait Log {
    /// The work of one persist (group commit).
    type Persist: PersistWork;

    /// Appends an entry (the next index) to the unpersisted tail; no I/O, so it cannot fail.
    fn append(&mut self, entry: &Entry);
    /// The persist of everything appended so far and of `hard_state`, if
    /// given; `None` when there is nothing to make durable.
    fn start_persist(&mut self, hard_state: Option<HardState>) -> Result<Option<Self::Persist>, LogError>;
    /// Takes back a persist whose work has run.
    fn finish_persist(&mut self, job: Self::Persist);
    /// The index of the last entry appended (or recovered); 0 for none.
    fn last_index(&self) -> u64;
    /// The index up to which the log is durable.
    fn persisted_index(&self) -> u64;
    /// Removes every entry after `index`, durably.
    fn truncate_after(&mut self, index: u64) -> Result<(), LogError>;
    /// The entries with `after < index <= up_to`, in order.
    fn read(&self, after: u64, up_to: u64) -> Result<Vec<Entry>, LogError>;
    /// The hard state last persisted (the default if never).
    fn hard_state(&self) -> HardState;

    /// Persists everything appended, and `hard_state` if given, on this thread.
    fn persist_blocking(&mut self, hard_state: Option<HardState>) -> Result<(), LogError> {
        if let Some(mut job) = self.start_persist(hard_state)? {
            job.run().map_err(io_err("persisting the transaction log"))?;
            self.finish_persist(job);
        }
        debug_assert_eq!(self.persisted_index(), self.last_index(), "everything appended is durable");
        Ok(())
    }
}

/// The bytes of an entry's record payload: its type, then its data.
pub fn entry_payload_len(entry: &Entry) -> usize {
    1 + entry.data.len()
}

/// Writes an entry's payload into `out` (`entry_payload_len` bytes).
pub fn write_entry_payload(entry: &Entry, out: &mut [u8]) {
    out[0] = match entry.entry_type {
        EntryType::EntryNormal => 0,
        EntryType::EntryConfChange => 1,
        EntryType::EntryConfChangeV2 => 2,
    };
    out[1..].copy_from_slice(&entry.data);
}

/// The entry a record holds, or why it is not one.
pub fn entry_of_record(index: u64, term: u64, payload: &[u8]) -> Result<Entry, String> {
    let (kind, data) = payload.split_first().ok_or("an empty payload")?;
    let entry_type = match kind {
        0 => EntryType::EntryNormal,
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        other => return Err(format!("unknown entry type {other}")),
    };
    Ok(Entry { entry_type, index, term, data: data.to_vec().into(), ..Default::default() })
}

#[cfg(test)]
mod conformance {
    //! The contract, checked against both implementations.

    use super::*;

    fn entry(index: u64) -> Entry {
        Entry { index, term: 1 + index / 10, data: format!("record {index}").into_bytes().into(), ..Default::default() }
    }

    fn indexes(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|e| e.index).collect()
    }

    fn append_range(log: &mut impl Log, from: u64, to: u64) {
        for i in from..=to {
            log.append(&entry(i));
        }
    }

    /// Appends, group persists, reads, truncation and hard state.
    fn contract(log: &mut impl Log) {
        assert!(log.start_persist(None).unwrap().is_none(), "nothing to persist in an empty log");
        append_range(log, 1, 30);
        assert_eq!(log.persisted_index(), 0, "appending is not persisting");
        let mut job = log.start_persist(None).unwrap().expect("a persist");
        assert_eq!(job.up_to(), 30);
        // Pipelining: appends go on while the persist is in flight.
        append_range(log, 31, 40);
        job.run().unwrap();
        log.finish_persist(job);
        assert_eq!(log.persisted_index(), 30, "a persist covers what was appended before it started");
        log.persist_blocking(None).unwrap();
        assert_eq!(log.persisted_index(), 40);
        let read = log.read(5, 12).unwrap();
        assert_eq!(indexes(&read), (6..=12).collect::<Vec<_>>());
        assert_eq!(read[0], entry(6));
        log.append(&Entry { index: 41, term: 5, ..Default::default() });
        log.persist_blocking(None).unwrap();
        assert_eq!(log.read(40, 41).unwrap()[0].data.len(), 0, "a no-op entry (no data) is kept");
        log.truncate_after(25).unwrap();
        assert_eq!(log.last_index(), 25);
        assert_eq!(indexes(&log.read(0, 100).unwrap()), (1..=25).collect::<Vec<_>>());
        append_range(log, 26, 27);
        log.persist_blocking(None).unwrap();
        assert_eq!(indexes(&log.read(24, 100).unwrap()), vec![25, 26, 27]);
        assert_eq!(log.hard_state(), HardState::default());
        let hard = HardState { term: 3, vote: 2, commit: 27 };
        let mut job = log.start_persist(Some(hard)).unwrap().expect("a hard state alone is something to persist");
        append_range(log, 28, 28);
        job.run().unwrap();
        log.finish_persist(job);
        assert_eq!((log.hard_state(), log.persisted_index()), (hard, 27), "the hard state is durable once its persist is done");
        log.persist_blocking(None).unwrap();
    }

    #[test]
    fn the_memory_log_keeps_the_contract() {
        contract(&mut MemLog::default());
    }

    #[test]
    fn the_file_log_keeps_the_contract_and_it_survives_a_reopen() {
        let dir = std::env::temp_dir().join(format!("keeper-log-contract-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Segments of 512 bytes: the test's entries roll through many of them.
        let (mut log, _) = TxnLog::open(&dir, 512, 0, true, |_| {}).unwrap();
        contract(&mut log);
        drop(log);
        let mut replayed = Vec::new();
        let (log, _) = TxnLog::open(&dir, 512, 20, true, |e| replayed.push(e)).unwrap();
        assert_eq!(log.last_index(), 28);
        assert_eq!(log.hard_state(), HardState { term: 3, vote: 2, commit: 27 });
        assert_eq!(indexes(&replayed), (21..=28).collect::<Vec<_>>(), "a reopen replays what follows the caller's snapshot");
        assert_eq!(replayed[0], entry(21));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn entry_payloads_round_trip() {
        for e in [entry(3), Entry { index: 4, term: 2, entry_type: EntryType::EntryConfChange, ..Default::default() }] {
            let mut buf = vec![0u8; entry_payload_len(&e)];
            write_entry_payload(&e, &mut buf);
            assert_eq!(entry_of_record(e.index, e.term, &buf).unwrap(), e);
        }
        assert!(entry_of_record(1, 1, &[9]).unwrap_err().contains("unknown entry type 9"));
    }
}
