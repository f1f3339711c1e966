//! The transaction log behind one narrow interface, [`Log`], with two
//! implementations: [`TxnLog`], preallocated segment files (what servers
//! run on), and [`MemLog`], in memory (tests and the simulator, where the
//! caller decides which persists complete before a crash).
//!
//! The interface is what a broadcast core (and later a consensus node)
//! needs of a log: append records in zxid order, make them durable in
//! groups (one persist covers everything appended before it started, and
//! runs while new records keep being appended), cut a suffix, read a range
//! back, and keep the small hard state a consensus engine must not lose.
//!
//! Contract, for every implementation:
//! - `append` takes strictly increasing zxids and does no I/O;
//! - at most one persist job is in flight: `start_persist` hands it out,
//!   the caller runs it (`PersistWork::run`, or its own equivalent), then
//!   gives it back to `finish_persist`; only then is `persisted_zxid` raised;
//! - `truncate_after` and `set_hard_state` are durable when they return and
//!   are never called while a persist is in flight.

mod file;
mod hard_state;
mod memory;

pub use file::{DATA_SUBDIR, PersistJob, Recovery, Scanned, SegmentFile, TxnLog, is_genesis, list_segments, scan, sync_dir};
pub use memory::{MemLog, MemPersist};

use crate::core::zxid::Zxid;
use std::io;
use std::path::PathBuf;

pub use crate::core::txn::LogRecord;

/// What a consensus engine must find again after a restart: the current
/// term, the vote cast in it and the highest index known committed (raft's
/// `HardState`). A standalone server keeps the default.
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

/// An `io::Error` with what was being done.
fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> LogError {
    let what = what.into();
    move |err| LogError::Io { what, err }
}

/// The I/O of one persist, run by the caller on a thread that may block.
pub trait PersistWork {
    /// The last zxid this persist makes durable.
    fn up_to(&self) -> Zxid;
    /// Does the I/O.
    fn run(&mut self) -> io::Result<()>;
}

/// A transaction log: see the module documentation for the contract.
pub trait Log {
    /// The work of one persist (group commit).
    type Persist: PersistWork;

    /// Appends a record to the unpersisted tail; no I/O, so it cannot fail.
    fn append(&mut self, zxid: Zxid, payload: &[u8]);
    /// The persist of everything appended so far, unless it is all durable.
    fn start_persist(&mut self) -> Result<Option<Self::Persist>, LogError>;
    /// Takes back a persist whose work has run.
    fn finish_persist(&mut self, job: Self::Persist);
    /// The zxid of the last record appended (or recovered).
    fn last_zxid(&self) -> Zxid;
    /// The zxid up to which the log is durable.
    fn persisted_zxid(&self) -> Zxid;
    /// Removes every record after `zxid`, durably.
    fn truncate_after(&mut self, zxid: Zxid) -> Result<(), LogError>;
    /// The records with `after < zxid <= up_to`, in order.
    fn read(&self, after: Zxid, up_to: Zxid) -> Result<Vec<LogRecord>, LogError>;
    /// The hard state last set (the default if never).
    fn hard_state(&self) -> HardState;
    /// Replaces the hard state, durably.
    fn set_hard_state(&mut self, state: HardState) -> Result<(), LogError>;

    /// Persists everything appended, on this thread.
    fn persist_blocking(&mut self) -> Result<(), LogError> {
        if let Some(mut job) = self.start_persist()? {
            job.run().map_err(io_err("persisting the transaction log"))?;
            self.finish_persist(job);
        }
        debug_assert_eq!(self.persisted_zxid(), self.last_zxid(), "everything appended is durable");
        Ok(())
    }
}

#[cfg(test)]
mod conformance {
    //! The contract, checked against both implementations.

    use super::*;

    fn payload(zxid: Zxid) -> Vec<u8> {
        format!("record {zxid}").into_bytes()
    }

    fn zxids(records: &[LogRecord]) -> Vec<i64> {
        records.iter().map(|r| r.zxid.raw()).collect()
    }

    fn append_range(log: &mut impl Log, from: i64, to: i64) {
        for z in from..=to {
            let zxid = Zxid::from_raw(z);
            log.append(zxid, &payload(zxid));
        }
    }

    /// Appends, group persists, reads, truncation and hard state.
    fn contract(log: &mut impl Log) {
        assert!(log.start_persist().unwrap().is_none(), "nothing to persist in an empty log");
        append_range(log, 1, 30);
        assert_eq!(log.persisted_zxid(), Zxid::ZERO, "appending is not persisting");
        let mut job = log.start_persist().unwrap().expect("a persist");
        assert_eq!(job.up_to(), Zxid::from_raw(30));
        // Pipelining: appends go on while the persist is in flight.
        append_range(log, 31, 40);
        job.run().unwrap();
        log.finish_persist(job);
        assert_eq!(log.persisted_zxid(), Zxid::from_raw(30), "a persist covers what was appended before it started");
        log.persist_blocking().unwrap();
        assert_eq!(log.persisted_zxid(), Zxid::from_raw(40));
        let read = log.read(Zxid::from_raw(5), Zxid::from_raw(12)).unwrap();
        assert_eq!(zxids(&read), (6..=12).collect::<Vec<_>>());
        assert_eq!(read[0].payload, payload(Zxid::from_raw(6)));
        log.truncate_after(Zxid::from_raw(25)).unwrap();
        assert_eq!(log.last_zxid(), Zxid::from_raw(25));
        assert_eq!(zxids(&log.read(Zxid::ZERO, Zxid::from_raw(100)).unwrap()), (1..=25).collect::<Vec<_>>());
        append_range(log, 26, 27);
        log.persist_blocking().unwrap();
        assert_eq!(zxids(&log.read(Zxid::from_raw(24), Zxid::from_raw(100)).unwrap()), vec![25, 26, 27]);
        assert_eq!(log.hard_state(), HardState::default());
        let hard = HardState { term: 3, vote: 2, commit: 27 };
        log.set_hard_state(hard).unwrap();
        assert_eq!(log.hard_state(), hard);
    }

    #[test]
    fn the_memory_log_keeps_the_contract() {
        contract(&mut MemLog::default());
    }

    #[test]
    fn the_file_log_keeps_the_contract_and_it_survives_a_reopen() {
        let dir = std::env::temp_dir().join(format!("keeper-log-contract-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Segments of 512 bytes: the test's records roll through many of them.
        let (mut log, _) = TxnLog::open(&dir, 512, Zxid::ZERO, |_| {}).unwrap();
        contract(&mut log);
        drop(log);
        // These payloads are not transactions: reopened after them, none is decoded.
        let (log, _) = TxnLog::open(&dir, 512, Zxid::from_raw(27), |_| panic!("nothing after 27")).unwrap();
        assert_eq!(log.last_zxid(), Zxid::from_raw(27));
        assert_eq!(log.hard_state(), HardState { term: 3, vote: 2, commit: 27 });
        assert_eq!(zxids(&log.read(Zxid::from_raw(20), Zxid::from_raw(30)).unwrap()), (21..=27).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
