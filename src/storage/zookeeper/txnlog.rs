//! ZooKeeper's transaction log files (`FileTxnLog`, `Util.readTxnBytes`).
//!
//! ```text
//! file   = header record* zero padding
//! header = int magic "ZKLG" | int version 2 | long dbid
//! record = long Adler-32 of the payload | int length | payload | byte 0x42 'B'
//! ```
//! A zero length is the end (the preallocated zeros). A record cut short,
//! or without its 'B', ends the file as after a crash: ZooKeeper treats it
//! so, and so does this reader, reporting where. A checksum that does not
//! match is corruption, and stops the import.

use super::ZkError;
use super::snapshot::adler32;
use super::txn::{self, Txn};
use std::path::{Path, PathBuf};

const MAGIC: i32 = 0x5A4B_4C47;
const HEADER_LEN: usize = 16;
const END_OF_RECORD: u8 = 0x42;

/// A log file, named after the zxid of its first transaction.
#[derive(Debug, Clone)]
pub struct LogFile {
    pub path: PathBuf,
    pub zxid: i64,
}

/// What reading one log found besides its transactions.
pub struct LogRead {
    /// Where a partial last record starts, if the file ends in one.
    pub partial_tail_at: Option<u64>,
}

/// The `log.<zxid>` files in `dir`, oldest first.
pub fn files(dir: &Path) -> Result<Vec<LogFile>, ZkError> {
    let mut logs: Vec<LogFile> = super::named(dir, "log")?.into_iter().map(|(path, zxid)| LogFile { path, zxid }).collect();
    logs.sort_by_key(|l| l.zxid);
    Ok(logs)
}

/// The logs that can hold transactions after `zxid` (`getLogFiles`): the
/// newest one that starts at or before it, and every later one.
pub fn covering(logs: &[LogFile], zxid: i64) -> &[LogFile] {
    let first = logs.iter().rposition(|l| l.zxid <= zxid).unwrap_or(0);
    &logs[first..]
}

/// Reads every transaction of one log file, in order.
/// `visit` may refuse a transaction; that stops the read, naming its offset.
pub fn read(log: &LogFile, mut visit: impl FnMut(Txn) -> Result<(), String>) -> Result<LogRead, ZkError> {
    let path = &log.path;
    let file = std::fs::File::open(path).map_err(|e| ZkError::file(path, format!("cannot open: {e}")))?;
    let empty = file.metadata().map(|m| m.len() == 0).map_err(|e| ZkError::file(path, format!("cannot read: {e}")))?;
    if empty {
        // A crash before the header was written (ZooKeeper 3.9 deletes such a file).
        return Ok(LogRead { partial_tail_at: None });
    }
    // Mapped: a log is preallocated (64 MiB by default), and only the pages
    // its records use are read.
    // SAFETY: the file is only read, and ZooKeeper must be stopped for an
    // import (the README says so); a file changed under the mapping could
    // only give wrong bytes, which the checksums catch.
    let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| ZkError::file(path, format!("cannot map: {e}")))?;
    let int_at = |at: usize| bytes.get(at..at + 4).map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")));
    if int_at(0) != Some(MAGIC) || bytes.len() < HEADER_LEN {
        return Err(ZkError::at(path, 0, "not a ZooKeeper transaction log (no \"ZKLG\" header)"));
    }
    let mut at = HEADER_LEN;
    loop {
        let Some(head) = bytes.get(at..at + 12) else {
            return Ok(LogRead { partial_tail_at: (at < bytes.len() && bytes[at..].iter().any(|b| *b != 0)).then_some(at as u64) });
        };
        let crc = i64::from_be_bytes(head[..8].try_into().expect("8 bytes"));
        let len = i32::from_be_bytes(head[8..].try_into().expect("4 bytes"));
        if len == 0 {
            return Ok(LogRead { partial_tail_at: None });
        }
        let Ok(len) = usize::try_from(len) else {
            return Err(ZkError::at(path, at as u64, format!("negative record length {len}")));
        };
        let end = at + 12 + len;
        if bytes.get(end) != Some(&END_OF_RECORD) {
            return Ok(LogRead { partial_tail_at: Some(at as u64) });
        }
        let payload = &bytes[at + 12..end];
        let computed = adler32(payload);
        if crc != computed as i64 {
            return Err(ZkError::at(path, at as u64, format!("checksum mismatch (stored {crc:#x}, computed {computed:#x})")));
        }
        let txn = txn::parse(payload).map_err(|why| ZkError::at(path, at as u64, why))?;
        visit(txn).map_err(|why| ZkError::at(path, at as u64, why))?;
        at = end + 1;
    }
}
