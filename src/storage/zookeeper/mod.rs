//! Reading Apache ZooKeeper's data directories (3.5 to 3.9), for `keeper
//! import`: its snapshots (`version-2/snapshot.<zxid>`, plain, gzip or
//! snappy) and transaction logs (`version-2/log.<zxid>`) in ZooKeeper's own
//! format (jute records, Adler-32 checksums), as its `FileSnap`,
//! `FileTxnLog`, `SerializeUtils` and `DataTree` write and read them.
//!
//! [`load`] rebuilds the tree a ZooKeeper server would serve after a
//! restart: the newest valid snapshot, then every logged transaction after
//! it, applied as `DataTree.processTxn` does (idempotently: a snapshot is
//! fuzzy, taken while writes went on), then the ephemerals of sessions that
//! no longer exist dropped and quota usage recounted.

mod model;
mod snapshot;
mod txn;
mod txnlog;

pub use model::ZkTree;

use crate::core::zxid::Zxid;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a ZooKeeper data directory could not be read: the file, and the
/// offset of the bad part when there is one.
#[derive(Debug)]
pub struct ZkError {
    pub file: PathBuf,
    pub offset: Option<u64>,
    pub why: String,
}

impl ZkError {
    fn at(file: &Path, offset: u64, why: impl Into<String>) -> ZkError {
        ZkError { file: file.to_path_buf(), offset: Some(offset), why: why.into() }
    }

    fn file(file: &Path, why: impl Into<String>) -> ZkError {
        ZkError { file: file.to_path_buf(), offset: None, why: why.into() }
    }
}

impl fmt::Display for ZkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(offset) => write!(f, "{}: at offset {offset}: {}", self.file.display(), self.why),
            None => write!(f, "{}: {}", self.file.display(), self.why),
        }
    }
}

impl std::error::Error for ZkError {}

/// ZooKeeper's files sit in `version-2` under its dataDir and dataLogDir;
/// either the directory itself or its parent may be given.
fn version_dir(dir: &Path) -> PathBuf {
    if dir.file_name().is_some_and(|n| n == "version-2") { dir.to_path_buf() } else { dir.join("version-2") }
}

/// Whether `next` directly follows `last`: the next counter in the same
/// epoch, or the first of a later one. Anything else means a log is missing.
fn follows(last: i64, next: i64) -> Result<(), String> {
    let (last_zxid, next_zxid) = (Zxid::from_raw(last), Zxid::from_raw(next));
    if next == last + 1 || (next_zxid.epoch() > last_zxid.epoch() && next_zxid.counter() == 1) {
        return Ok(());
    }
    Err(format!("transaction {next:#x} does not follow {last:#x}: the logs in between are missing, and importing without them would lose writes"))
}

/// Files in `dir` named `<prefix>.<hex zxid>[.anything]`, with that zxid.
fn named(dir: &Path, prefix: &str) -> Result<Vec<(PathBuf, i64)>, ZkError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ZkError::file(dir, format!("cannot list: {e}"))),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ZkError::file(dir, format!("cannot list: {e}")))?;
        let name = entry.file_name();
        let mut parts = name.to_str().unwrap_or_default().split('.');
        if parts.next() != Some(prefix) {
            continue;
        }
        if let Some(zxid) = parts.next().and_then(|hex| u64::from_str_radix(hex, 16).ok()) {
            found.push((entry.path(), zxid as i64));
        }
    }
    Ok(found)
}

/// What loading read, for the import's report.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// The snapshot the tree started from.
    pub snapshot: PathBuf,
    /// Newer snapshots that were not valid, and why.
    pub skipped_snapshots: Vec<String>,
    /// Log files read, and transactions applied from them.
    pub logs: Vec<PathBuf>,
    pub txns_applied: u64,
    /// Logs that end in a partial record (as after a crash; ZooKeeper
    /// ignores such a tail too).
    pub partial_tails: Vec<String>,
}

/// Loads the tree ZooKeeper would restore from `data_dir` (snapshots) and
/// `log_dir` (transaction logs; often the same directory).
pub fn load(data_dir: &Path, log_dir: &Path) -> Result<(ZkTree, LoadReport), ZkError> {
    let snap_dir = version_dir(data_dir);
    let log_dir = version_dir(log_dir);
    let mut report = LoadReport::default();
    let candidates = snapshot::candidates(&snap_dir)?;
    let logs = txnlog::files(&log_dir)?;
    let Some(found) = candidates.iter().find_map(|c| match snapshot::read(c) {
        Ok(s) => Some(s),
        Err(e) => {
            report.skipped_snapshots.push(e.to_string());
            None
        }
    }) else {
        let why = match (candidates.is_empty(), logs.is_empty()) {
            (true, true) => "holds no ZooKeeper snapshot or transaction log (snapshot.<zxid>, log.<zxid>)".to_string(),
            (true, false) => "holds transaction logs but no snapshot; ZooKeeper refuses such a directory too".to_string(),
            (false, _) => format!("no snapshot is valid: {}", report.skipped_snapshots.join("; ")),
        };
        return Err(ZkError::file(&snap_dir, why));
    };
    report.snapshot = found.path.clone();
    let mut tree = ZkTree::from_snapshot(found).map_err(|why| ZkError::file(&report.snapshot, why))?;
    for log in txnlog::covering(&logs, tree.last_zxid()) {
        let after = tree.last_zxid();
        let read = txnlog::read(log, |txn| {
            if txn.header.zxid > after {
                follows(tree.last_zxid(), txn.header.zxid)?;
                tree.apply(&txn)?;
                report.txns_applied += 1;
            }
            Ok(())
        })?;
        if let Some(offset) = read.partial_tail_at {
            report.partial_tails.push(format!("{}: at offset {offset}", log.path.display()));
        }
        report.logs.push(log.path.clone());
    }
    tree.finish();
    Ok((tree, report))
}
