//! The transaction log: preallocated segment files in
//! `<dataLogDir>/keeper-v1/`, named `txnlog.<first zxid, 16 hex digits>`.
//! Record format: see [`super::record`].
//!
//! Writing: `append` encodes a record into the active segment's batch buffer
//! (no syscall); `prepare_sync` writes the batch into the segment file with
//! one `pwrite` (the page cache) and returns the [`SyncJob`] that makes it
//! durable: an fdatasync, which the broadcast core submits to its io_uring
//! (`SyncJob::run` does it on the calling thread). One sync covers a whole
//! batch: group commit. A segment is preallocated with `fallocate`, so a
//! full disk shows up as an error when a segment is created. Rolling to a
//! new segment syncs the old one first and the directory after creating the
//! new one.
//!
//! Why appends are not written through a shared mapping (measured, PERF.md):
//! after each sync's writeback the kernel write-protects the mapped pages it
//! cleaned, with a TLB shootdown to every CPU running keeper, and the next
//! append takes a write fault to dirty the page again (and split a huge
//! page mapping). At one sync per few writes that cost more server CPU than
//! a `pwrite` per batch. Reading stays memory-mapped: recovery and
//! `keeper log dump` read segments in place through a mapping, and no log
//! page counts in keeper's resident set while it runs.
//!
//! Recovery (`open`): segments are read in order, from the one that holds
//! the first transaction after the caller's snapshot; every record must be
//! valid and zxids strictly increasing. The first invalid record of the *last*
//! segment ends the log if nothing valid follows it (a torn tail from a crash
//! during the last unsynced batch): it is zeroed out and logged. An invalid
//! record anywhere else, or one followed by valid records, is corruption of
//! committed data: `open` refuses, naming the file and offset.

use super::record::{self, RecordAt, SEGMENT_HEADER_LEN};
use crate::core::txn::Txn;
use memmap2::Mmap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The directory under dataDir / dataLogDir that holds keeper's files.
pub const DATA_SUBDIR: &str = "keeper-v1";
const SEGMENT_PREFIX: &str = "txnlog.";

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

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> LogError {
    let what = what.into();
    move |err| LogError::Io { what, err }
}

/// A segment file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    pub path: PathBuf,
    pub first_zxid: i64,
}

/// The log's segment files in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>, LogError> {
    let files = super::naming::list(dir, SEGMENT_PREFIX).map_err(io_err(format!("listing {}", dir.display())))?;
    Ok(files.into_iter().map(|(path, first_zxid)| SegmentFile { path, first_zxid }).collect())
}

/// Whether a segment is the first of its server's history.
pub fn is_genesis(segment: &SegmentFile) -> Result<bool, LogError> {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    let mut f = File::open(&segment.path).map_err(io_err(format!("opening {}", segment.path.display())))?;
    std::io::Read::read_exact(&mut f, &mut header).map_err(io_err(format!("reading {}", segment.path.display())))?;
    let h =
        record::read_segment_header(&header).ok_or_else(|| LogError::Corrupt { file: segment.path.clone(), offset: 0, why: "bad segment header".into() })?;
    Ok(h.genesis)
}

/// Work for the caller: make everything the log has written durable (an
/// fdatasync of the active segment). Runs on any thread.
pub struct SyncJob {
    file: Arc<File>,
    /// The last zxid this sync makes durable.
    pub up_to_zxid: i64,
}

impl SyncJob {
    /// fdatasync of the segment, on this thread.
    pub fn run(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// The segment file: the caller may fdatasync it its own way instead.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }
}

/// The segment being appended to.
struct ActiveSegment {
    path: PathBuf,
    file: Arc<File>,
    /// The preallocated length.
    size: usize,
    /// Where the next record goes (the batch included).
    write_off: usize,
    /// Records appended since the last `prepare_sync`: the bytes
    /// `[write_off - batch.len(), write_off)` of the segment.
    batch: Vec<u8>,
}

impl ActiveSegment {
    fn new(path: PathBuf, file: File, size: usize, end: usize) -> ActiveSegment {
        ActiveSegment { path, file: Arc::new(file), size, write_off: end, batch: Vec::new() }
    }

    /// Writes the batch into the file (not yet durable).
    fn write_batch(&mut self) -> Result<(), LogError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let at = self.write_off - self.batch.len();
        self.file.write_all_at(&self.batch, at as u64).map_err(io_err(format!("writing {}", self.path.display())))?;
        self.batch.clear();
        Ok(())
    }
}

/// The open log, positioned for appending.
pub struct TxnLog {
    dir: PathBuf,
    segment_bytes: usize,
    active: Option<ActiveSegment>,
    last_zxid: i64,
    synced_zxid: i64,
    /// The next segment created starts an empty history (no segment and no
    /// snapshot existed when the log was opened).
    genesis_next: bool,
}

/// What `open` found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Records replayed (those after the snapshot's zxid).
    pub replayed: u64,
    /// Where a torn tail was cut, if one was.
    pub truncated_tail: Option<(PathBuf, usize)>,
}

impl TxnLog {
    /// Opens the log in `dir` (created if missing), calls `replay` for every
    /// record with a zxid above `after_zxid` in order, repairs a torn tail,
    /// and positions the writer after the last record.
    pub fn open(dir: &Path, segment_bytes: usize, after_zxid: i64, mut replay: impl FnMut(Txn)) -> Result<(TxnLog, Recovery), LogError> {
        assert!(segment_bytes >= SEGMENT_HEADER_LEN + 64, "segments must hold at least a header and a record");
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let mut segments = list_segments(dir)?;
        remove_unborn(&mut segments)?;
        let mut log =
            TxnLog { dir: dir.to_path_buf(), segment_bytes, active: None, last_zxid: 0, synced_zxid: 0, genesis_next: segments.is_empty() && after_zxid == 0 };
        let mut recovery = Recovery::default();
        for (i, seg) in segments.iter().enumerate() {
            let is_last = i + 1 == segments.len();
            // A segment followed by one that starts at or before `after_zxid + 1`
            // holds only transactions the caller already has: it is not read,
            // as ZooKeeper reads no log file older than its snapshot needs.
            // The next segment must not be the last, which a crash may have
            // left without a record: the last zxid is then read from it.
            if i + 2 < segments.len() && segments[i + 1].first_zxid <= after_zxid + 1 {
                continue;
            }
            let end = log.scan_segment(seg, is_last, after_zxid, &mut replay, &mut recovery)?;
            if is_last {
                log.activate_existing(seg, end)?;
            }
        }
        log.synced_zxid = log.last_zxid;
        Ok((log, recovery))
    }

    /// Reads one segment; returns the offset where its records end.
    fn scan_segment(
        &mut self,
        seg: &SegmentFile,
        is_last: bool,
        after_zxid: i64,
        replay: &mut impl FnMut(Txn),
        recovery: &mut Recovery,
    ) -> Result<usize, LogError> {
        let file = File::open(&seg.path).map_err(io_err(format!("opening {}", seg.path.display())))?;
        // SAFETY: segment files are only written by this process, which is not writing yet.
        let map = unsafe { Mmap::map(&file) }.map_err(io_err(format!("mapping {}", seg.path.display())))?;
        let corrupt = |offset: usize, why: String| LogError::Corrupt { file: seg.path.clone(), offset, why };
        match record::read_segment_header(&map) {
            Some(h) if h.first_zxid == seg.first_zxid => {}
            Some(h) => {
                return Err(corrupt(0, format!("header says first zxid {:#x}, name says {:#x}", h.first_zxid, seg.first_zxid)));
            }
            None => return Err(corrupt(0, "bad segment header".into())),
        }
        let mut off = SEGMENT_HEADER_LEN;
        loop {
            match record::read_record(&map, off) {
                RecordAt::End => return Ok(off),
                RecordAt::Valid { zxid, payload, next } => {
                    if zxid <= self.last_zxid {
                        return Err(corrupt(off, format!("zxid {zxid:#x} does not follow {:#x}", self.last_zxid)));
                    }
                    if zxid > after_zxid {
                        let txn = Txn::from_bytes(payload).map_err(|e| corrupt(off, format!("record does not decode: {e}")))?;
                        if txn.zxid != zxid {
                            return Err(corrupt(off, format!("record zxid {zxid:#x} holds transaction {:#x}", txn.zxid)));
                        }
                        replay(txn);
                        recovery.replayed += 1;
                    }
                    self.last_zxid = zxid;
                    off = next;
                }
                RecordAt::Invalid(why) => {
                    if !is_last {
                        return Err(corrupt(off, why.to_string()));
                    }
                    if let Some(valid_at) = find_valid_record_after(&map, off, self.last_zxid) {
                        return Err(corrupt(off, format!("{why}, but a valid record follows at offset {valid_at}")));
                    }
                    eprintln!("keeper: transaction log {}: torn tail at offset {off} ({why}); truncating the unacknowledged remainder", seg.path.display());
                    recovery.truncated_tail = Some((seg.path.clone(), off));
                    return Ok(off);
                }
            }
        }
    }

    fn activate_existing(&mut self, seg: &SegmentFile, end: usize) -> Result<(), LogError> {
        let file = OpenOptions::new().read(true).write(true).open(&seg.path).map_err(io_err(format!("opening {}", seg.path.display())))?;
        // SAFETY: segment files are only written by this process, which is not writing yet.
        let map = unsafe { Mmap::map(&file) }.map_err(io_err(format!("mapping {}", seg.path.display())))?;
        let size = map.len();
        // Zero anything after the last valid record (a torn tail), durably.
        if map[end..].iter().any(|b| *b != 0) {
            let zeros = vec![0u8; (size - end).min(1 << 20)];
            let mut at = end;
            while at < size {
                let n = zeros.len().min(size - at);
                file.write_all_at(&zeros[..n], at as u64).map_err(io_err(format!("zeroing torn tail of {}", seg.path.display())))?;
                at += n;
            }
            file.sync_data().map_err(io_err(format!("zeroing torn tail of {}", seg.path.display())))?;
        }
        self.active = Some(ActiveSegment::new(seg.path.clone(), file, size, end));
        Ok(())
    }

    /// The zxid of the last record appended (or recovered).
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The zxid up to which the log is durable.
    pub fn synced_zxid(&self) -> i64 {
        self.synced_zxid
    }

    /// Appends a transaction to the current batch (not yet written: see `prepare_sync`).
    pub fn append(&mut self, txn: &Txn) -> Result<(), LogError> {
        assert!(txn.zxid > self.last_zxid, "log appends in zxid order: {:#x} after {:#x}", txn.zxid, self.last_zxid);
        let payload = txn.to_bytes();
        let need = record::record_len(payload.len());
        let fits = self.active.as_ref().is_some_and(|a| a.write_off + need <= a.size);
        if !fits {
            self.roll(txn.zxid, need)?;
        }
        let active = self.active.as_mut().expect("roll made a segment");
        let start = active.batch.len();
        active.batch.resize(start + need, 0);
        record::write_record(&mut active.batch[start..], txn.zxid, &payload);
        active.write_off += need;
        self.last_zxid = txn.zxid;
        Ok(())
    }

    /// Writes the batch into the segment file and returns the sync that
    /// makes everything appended so far durable, if one is needed.
    pub fn prepare_sync(&mut self) -> Result<Option<SyncJob>, LogError> {
        let Some(a) = self.active.as_mut() else { return Ok(None) };
        if self.synced_zxid == self.last_zxid {
            debug_assert!(a.batch.is_empty(), "every appended record is synced");
            return Ok(None);
        }
        a.write_batch()?;
        Ok(Some(SyncJob { file: a.file.clone(), up_to_zxid: self.last_zxid }))
    }

    /// Records that `job` completed.
    pub fn synced(&mut self, job: &SyncJob) {
        self.synced_zxid = self.synced_zxid.max(job.up_to_zxid);
    }

    /// Syncs now, on this thread (tools, tests, shutdown).
    pub fn sync_blocking(&mut self) -> Result<(), LogError> {
        if let Some(job) = self.prepare_sync()? {
            job.run().map_err(io_err("syncing the transaction log"))?;
            self.synced(&job);
        }
        Ok(())
    }

    /// Starts a new segment whose first record is `first_zxid` and needs `need` bytes.
    fn roll(&mut self, first_zxid: i64, need: usize) -> Result<(), LogError> {
        // The old segment must be durable before records land in the new one,
        // or a crash could keep later records and lose earlier ones.
        if let Some(mut old) = self.active.take() {
            old.write_batch()?;
            old.file.sync_data().map_err(io_err(format!("syncing {}", old.path.display())))?;
        }
        let size = self.segment_bytes.max(SEGMENT_HEADER_LEN + need);
        let path = self.dir.join(super::naming::name(SEGMENT_PREFIX, first_zxid));
        let header = record::SegmentHeader { first_zxid, genesis: self.genesis_next };
        let file = match create_segment(&path, size, header) {
            Ok(created) => created,
            Err(e) => {
                // Leave no half-made segment behind: recovery would take it for damage.
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        sync_dir(&self.dir).map_err(io_err(format!("syncing directory {}", self.dir.display())))?;
        self.genesis_next = false;
        self.active = Some(ActiveSegment::new(path, file, size, SEGMENT_HEADER_LEN));
        Ok(())
    }
}

/// Creates a preallocated segment file with a durable header.
fn create_segment(path: &Path, size: usize, header: record::SegmentHeader) -> Result<File, LogError> {
    let file = OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(io_err(format!("creating {}", path.display())))?;
    preallocate(&file, size).map_err(io_err(format!("preallocating {} bytes for {}", size, path.display())))?;
    let mut bytes = [0u8; SEGMENT_HEADER_LEN];
    record::write_segment_header(&mut bytes, header);
    file.write_all_at(&bytes, 0).map_err(io_err(format!("writing the header of {}", path.display())))?;
    file.sync_data().map_err(io_err(format!("syncing {}", path.display())))?;
    Ok(file)
}

/// A last segment whose creation a crash interrupted (shorter than a header,
/// or a header of zeros) holds no record: it is removed, with a warning.
fn remove_unborn(segments: &mut Vec<SegmentFile>) -> Result<(), LogError> {
    let Some(last) = segments.last() else { return Ok(()) };
    let mut head = Vec::with_capacity(SEGMENT_HEADER_LEN);
    let file = File::open(&last.path).map_err(io_err(format!("opening {}", last.path.display())))?;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, SEGMENT_HEADER_LEN as u64), &mut head)
        .map_err(io_err(format!("reading {}", last.path.display())))?;
    if head.len() == SEGMENT_HEADER_LEN && head.iter().any(|b| *b != 0) {
        return Ok(());
    }
    eprintln!("keeper: removing {}: its creation never completed (no header), so it holds no transaction", last.path.display());
    std::fs::remove_file(&last.path).map_err(io_err(format!("removing {}", last.path.display())))?;
    segments.pop();
    Ok(())
}

/// Reserves `size` bytes of real disk for `file` (not a sparse hole).
fn preallocate(file: &File, size: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(size).map_err(|_| io::Error::other("segment too large"))?;
    // SAFETY: plain syscall on an open descriptor.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// fsyncs a directory so a file created in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A record found by [`scan`].
#[derive(Debug)]
pub enum Scanned {
    /// A valid record at this offset.
    Record { offset: usize, txn: Txn },
    /// The records end cleanly at this offset.
    End { offset: usize },
    /// An invalid record: `torn` when nothing valid follows (a crash tail).
    Invalid { offset: usize, why: String, torn: bool },
}

/// Reads one segment without repairing anything (for `keeper log dump`).
pub fn scan(path: &Path, mut visit: impl FnMut(Scanned)) -> Result<i64, LogError> {
    let file = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    // SAFETY: read-only mapping; a concurrent appender only writes past what we read.
    let map = unsafe { Mmap::map(&file) }.map_err(io_err(format!("mapping {}", path.display())))?;
    let first = record::read_segment_header(&map).map(|h| h.first_zxid).ok_or_else(|| LogError::Corrupt {
        file: path.to_path_buf(),
        offset: 0,
        why: "bad segment header".into(),
    })?;
    let mut off = SEGMENT_HEADER_LEN;
    let mut last = 0;
    loop {
        match record::read_record(&map, off) {
            RecordAt::End => {
                visit(Scanned::End { offset: off });
                return Ok(first);
            }
            RecordAt::Valid { zxid, payload, next } => {
                match Txn::from_bytes(payload) {
                    Ok(txn) => visit(Scanned::Record { offset: off, txn }),
                    Err(e) => {
                        visit(Scanned::Invalid { offset: off, why: format!("zxid {zxid:#x} does not decode: {e}"), torn: false });
                        return Ok(first);
                    }
                }
                last = zxid;
                off = next;
            }
            RecordAt::Invalid(why) => {
                let torn = find_valid_record_after(&map, off, last).is_none();
                visit(Scanned::Invalid { offset: off, why: why.to_string(), torn });
                return Ok(first);
            }
        }
    }
}

/// Looks for a valid record with a zxid above `last_zxid` anywhere after the
/// invalid one at `bad_off`: if one exists, the damage is not a torn tail.
fn find_valid_record_after(seg: &[u8], bad_off: usize, last_zxid: i64) -> Option<usize> {
    let mut off = bad_off + 8;
    while off + record::RECORD_HEADER_LEN <= seg.len() {
        if let RecordAt::Valid { zxid, .. } = record::read_record(seg, off)
            && zxid > last_zxid
        {
            return Some(off);
        }
        off += 8;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::txn::{TxnBody, TxnOp};

    fn txn(zxid: i64) -> Txn {
        Txn { zxid, time_ms: zxid, session_id: 1, cxid: zxid as i32, body: TxnBody::Single(TxnOp::Delete { path: format!("/n{zxid}") }) }
    }

    fn reopen(dir: &Path, seg: usize) -> Result<(Vec<i64>, Recovery), LogError> {
        let mut seen = Vec::new();
        let (_, rec) = TxnLog::open(dir, seg, 0, |t| seen.push(t.zxid))?;
        Ok((seen, rec))
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("keeper-log-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn appends_survive_reopen_across_segments() {
        let dir = tempdir("segments");
        let (mut log, _) = TxnLog::open(&dir, 512, 0, |_| {}).unwrap();
        for z in 1..=40 {
            log.append(&txn(z)).unwrap();
            if z % 7 == 0 {
                log.sync_blocking().unwrap();
            }
        }
        log.sync_blocking().unwrap();
        drop(log);
        assert!(list_segments(&dir).unwrap().len() > 1);
        let (seen, rec) = reopen(&dir, 512).unwrap();
        assert_eq!(seen, (1..=40).collect::<Vec<_>>());
        assert!(rec.truncated_tail.is_none());
        // Appending continues after the last record.
        let (mut log, _) = TxnLog::open(&dir, 512, 40, |_| panic!("nothing after 40")).unwrap();
        log.append(&txn(41)).unwrap();
        log.sync_blocking().unwrap();
        assert_eq!(reopen(&dir, 512).unwrap().0.last(), Some(&41));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn segments_wholly_before_the_snapshot_are_not_read() {
        let dir = tempdir("skip");
        let (mut log, _) = TxnLog::open(&dir, 512, 0, |_| {}).unwrap();
        for z in 1..=40 {
            log.append(&txn(z)).unwrap();
            log.sync_blocking().unwrap();
        }
        drop(log);
        let segments = list_segments(&dir).unwrap();
        assert!(segments.len() > 3);
        // Damage the first segment: recovery from zxid 0 refuses, from a later
        // snapshot (which does not need that segment) it does not look.
        let first = &segments[0].path;
        let mut bytes = std::fs::read(first).unwrap();
        bytes[SEGMENT_HEADER_LEN + 20] ^= 0xff;
        std::fs::write(first, &bytes).unwrap();
        assert!(reopen(&dir, 512).is_err());
        let after = segments[2].first_zxid - 1;
        let mut seen = Vec::new();
        let (log, _) = TxnLog::open(&dir, 512, after, |t| seen.push(t.zxid)).unwrap();
        assert_eq!(seen, ((after + 1)..=40).collect::<Vec<_>>());
        assert_eq!(log.last_zxid(), 40);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_prepared_batches_reach_the_file() {
        let dir = tempdir("batches");
        const SEGMENT: usize = 1 << 20;
        let (mut log, _) = TxnLog::open(&dir, SEGMENT, 0, |_| {}).unwrap();
        let big = |zxid: i64| Txn {
            zxid,
            time_ms: zxid,
            session_id: 1,
            cxid: 1,
            body: TxnBody::Single(TxnOp::SetData { path: "/big".into(), data: Some(bytes::Bytes::from(vec![zxid as u8; 4000])), version: 1 }),
        };
        // Batches of ten across three segments, each written and synced.
        for zxid in 1..=800 {
            log.append(&big(zxid)).unwrap();
            if zxid % 10 == 0 {
                let job = log.prepare_sync().unwrap().expect("a batch to sync");
                assert_eq!(job.up_to_zxid, zxid);
                job.run().unwrap();
                log.synced(&job);
                assert!(log.prepare_sync().unwrap().is_none(), "nothing left to sync");
            }
        }
        assert!(list_segments(&dir).unwrap().len() >= 3);
        // A batch never prepared stays in memory: it was never acknowledged.
        log.append(&big(801)).unwrap();
        drop(log);
        let (seen, rec) = reopen(&dir, SEGMENT).unwrap();
        assert_eq!(seen, (1..=800).collect::<Vec<_>>());
        assert!(rec.truncated_tail.is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_tail_is_cut_and_middle_damage_refused() {
        let dir = tempdir("torn");
        let (mut log, _) = TxnLog::open(&dir, 4096, 0, |_| {}).unwrap();
        for z in 1..=5 {
            log.append(&txn(z)).unwrap();
        }
        log.sync_blocking().unwrap();
        drop(log);
        let seg = list_segments(&dir).unwrap().pop().unwrap().path;
        let pristine = std::fs::read(&seg).unwrap();
        let rec_len = record::record_len(txn(1).to_bytes().len());
        let last_start = SEGMENT_HEADER_LEN + 4 * rec_len;
        // Damage inside the last record's payload: a torn tail.
        let mut bytes = pristine.clone();
        bytes[last_start + 20] ^= 0xff;
        std::fs::write(&seg, &bytes).unwrap();
        let (seen, rec) = reopen(&dir, 4096).unwrap();
        assert_eq!(seen, vec![1, 2, 3, 4]);
        assert_eq!(rec.truncated_tail.unwrap().1, last_start);
        // Damage inside the second record: valid records follow, so refuse.
        let mut bytes = pristine.clone();
        bytes[SEGMENT_HEADER_LEN + rec_len + 20] ^= 0xff;
        std::fs::write(&seg, &bytes).unwrap();
        let err = reopen(&dir, 4096).unwrap_err().to_string();
        assert!(err.contains("corrupt at offset") && err.contains("valid record follows"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
