//! The transaction log: preallocated, memory-mapped segment files in
//! `<dataLogDir>/keeper-v1/`, named `txnlog.<first zxid, 16 hex digits>`.
//! Record format: see [`super::record`].
//!
//! Writing: `append` copies a record into the mapped active segment (no
//! syscall); `sync_job` describes the bytes written since the last sync, and
//! the caller makes them durable off the executor's critical path, then calls
//! `synced`: either `SyncJob::run` (an msync of the range, on a blocking
//! thread) or an fdatasync of `SyncJob::file` (the broadcast core submits it
//! to io_uring). The two are the same kernel operation: msync(MS_SYNC) is
//! fdatasync over the range, and the pages written through the map are the
//! segment file's page cache. One sync covers a whole batch:
//! group commit. A segment is preallocated with `fallocate`, so a full disk
//! shows up as an error when a segment is created, never as a fault while
//! writing through the map. Rolling to a new segment syncs the old one first
//! and the directory after creating the new one.
//!
//! Resident memory: pages behind the synced offset are dropped from the
//! mapping every [`RELEASE_CHUNK`] bytes (`MADV_DONTNEED`). They stay in the
//! page cache, clean, for the kernel to keep or evict, but stop counting in
//! keeper's resident set, as the page cache behind a `write()`-based log
//! never does.
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
use memmap2::{Mmap, MmapRaw};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
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

/// Work for the caller: make the bytes `[offset, offset+len)` of the active
/// segment durable. Runs on any thread.
pub struct SyncJob {
    map: Arc<MmapRaw>,
    file: Arc<File>,
    offset: usize,
    len: usize,
    /// The last zxid this sync makes durable.
    pub up_to_zxid: i64,
}

impl SyncJob {
    /// msync(MS_SYNC) of the range: writes it back and flushes the device cache.
    pub fn run(&self) -> io::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        self.map.flush_range(self.offset, self.len)
    }

    /// The segment file: an fdatasync of it makes the range durable too.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }
}

/// How many synced bytes accumulate before their pages are dropped from the mapping.
const RELEASE_CHUNK: usize = 1 << 20;

struct ActiveSegment {
    path: PathBuf,
    map: Arc<MmapRaw>,
    file: Arc<File>,
    write_off: usize,
    synced_off: usize,
    /// Pages below this offset have been dropped from the mapping.
    released_off: usize,
}

impl ActiveSegment {
    fn new(path: PathBuf, map: MmapRaw, file: File, end: usize) -> ActiveSegment {
        ActiveSegment { path, map: Arc::new(map), file: Arc::new(file), write_off: end, synced_off: end, released_off: 0 }
    }

    /// Drops the mapping's pages below `upto` (rounded down to a page), all synced.
    fn release_pages(&mut self, upto: usize) {
        debug_assert!(upto <= self.synced_off || self.synced_off == self.write_off, "only written-back pages are released");
        let upto = upto - upto % page_size();
        if upto <= self.released_off {
            return;
        }
        // SAFETY: no reference into the mapping outlives a single append, and
        // MADV_DONTNEED on a shared file mapping keeps the data in the page
        // cache: a later read or write of the range faults the page back in.
        let dropped = unsafe { self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, self.released_off, upto - self.released_off) };
        debug_assert!(dropped.is_ok(), "madvise of a range inside the mapping: {dropped:?}");
        self.released_off = upto;
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
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
        let map = MmapRaw::map_raw(&file).map_err(io_err(format!("mapping {}", seg.path.display())))?;
        let len = map.len();
        // Zero anything after the last valid record (a torn tail), durably.
        // SAFETY: we own the mapping and nothing else reads or writes it now.
        let tail = unsafe { std::slice::from_raw_parts_mut(map.as_mut_ptr().add(end), len - end) };
        if tail.iter().any(|b| *b != 0) {
            tail.fill(0);
            map.flush_range(end, len - end).map_err(io_err(format!("zeroing torn tail of {}", seg.path.display())))?;
        }
        let mut active = ActiveSegment::new(seg.path.clone(), map, file, end);
        // Checking the tail read every page of the segment in.
        active.release_pages(len);
        self.active = Some(active);
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

    /// Appends a transaction (not yet durable: see `sync_job`).
    pub fn append(&mut self, txn: &Txn) -> Result<(), LogError> {
        assert!(txn.zxid > self.last_zxid, "log appends in zxid order: {:#x} after {:#x}", txn.zxid, self.last_zxid);
        let payload = txn.to_bytes();
        let need = record::record_len(payload.len());
        let fits = self.active.as_ref().is_some_and(|a| a.write_off + need <= a.map.len());
        if !fits {
            self.roll(txn.zxid, need)?;
        }
        let active = self.active.as_mut().expect("roll made a segment");
        // SAFETY: the range is inside the mapping, and this writer is the only one;
        // concurrent SyncJobs only msync ranges below write_off.
        let buf = unsafe { std::slice::from_raw_parts_mut(active.map.as_mut_ptr().add(active.write_off), need) };
        record::write_record(buf, txn.zxid, &payload);
        active.write_off += need;
        self.last_zxid = txn.zxid;
        Ok(())
    }

    /// The sync that would make everything appended so far durable, if any is needed.
    pub fn sync_job(&self) -> Option<SyncJob> {
        let a = self.active.as_ref()?;
        if self.synced_zxid == self.last_zxid {
            return None;
        }
        Some(SyncJob { map: a.map.clone(), file: a.file.clone(), offset: a.synced_off, len: a.write_off - a.synced_off, up_to_zxid: self.last_zxid })
    }

    /// Records that `job` completed.
    pub fn synced(&mut self, job: &SyncJob) {
        debug_assert!(job.up_to_zxid >= self.synced_zxid);
        self.synced_zxid = job.up_to_zxid;
        if let Some(a) = self.active.as_mut()
            && Arc::ptr_eq(&a.map, &job.map)
        {
            a.synced_off = a.synced_off.max(job.offset + job.len);
            if a.synced_off >= a.released_off + RELEASE_CHUNK {
                a.release_pages(a.synced_off);
            }
        }
    }

    /// Syncs now, on this thread (tools, tests, shutdown).
    pub fn sync_blocking(&mut self) -> Result<(), LogError> {
        if let Some(job) = self.sync_job() {
            job.run().map_err(io_err("syncing the transaction log"))?;
            self.synced(&job);
        }
        Ok(())
    }

    /// Starts a new segment whose first record is `first_zxid` and needs `need` bytes.
    fn roll(&mut self, first_zxid: i64, need: usize) -> Result<(), LogError> {
        // The old segment must be durable before records land in the new one,
        // or a crash could keep later records and lose earlier ones.
        if let Some(old) = self.active.take() {
            let unsynced = old.write_off - old.synced_off;
            if unsynced > 0 {
                old.map.flush_range(old.synced_off, unsynced).map_err(io_err(format!("syncing {}", old.path.display())))?;
            }
        }
        let size = self.segment_bytes.max(SEGMENT_HEADER_LEN + need);
        let path = self.dir.join(super::naming::name(SEGMENT_PREFIX, first_zxid));
        let header = record::SegmentHeader { first_zxid, genesis: self.genesis_next };
        let (map, file) = match create_segment(&path, size, header) {
            Ok(created) => created,
            Err(e) => {
                // Leave no half-made segment behind: recovery would take it for damage.
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        sync_dir(&self.dir).map_err(io_err(format!("syncing directory {}", self.dir.display())))?;
        self.genesis_next = false;
        self.active = Some(ActiveSegment::new(path, map, file, SEGMENT_HEADER_LEN));
        Ok(())
    }
}

/// Creates a preallocated segment file with a durable header.
fn create_segment(path: &Path, size: usize, header: record::SegmentHeader) -> Result<(MmapRaw, File), LogError> {
    let file = OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(io_err(format!("creating {}", path.display())))?;
    preallocate(&file, size).map_err(io_err(format!("preallocating {} bytes for {}", size, path.display())))?;
    let map = MmapRaw::map_raw(&file).map_err(io_err(format!("mapping {}", path.display())))?;
    // SAFETY: fresh mapping of at least SEGMENT_HEADER_LEN bytes, owned here.
    let bytes = unsafe { std::slice::from_raw_parts_mut(map.as_mut_ptr(), SEGMENT_HEADER_LEN) };
    record::write_segment_header(bytes, header);
    map.flush_range(0, SEGMENT_HEADER_LEN).map_err(io_err(format!("syncing {}", path.display())))?;
    Ok((map, file))
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
    fn synced_pages_are_released_and_the_log_reads_back() {
        let dir = tempdir("release");
        let (mut log, _) = TxnLog::open(&dir, 4 * RELEASE_CHUNK, 0, |_| {}).unwrap();
        let big = |zxid: i64| Txn {
            zxid,
            time_ms: zxid,
            session_id: 1,
            cxid: 1,
            body: TxnBody::Single(TxnOp::SetData { path: "/big".into(), data: Some(bytes::Bytes::from(vec![zxid as u8; 4000])), version: 1 }),
        };
        let mut zxid = 0;
        while log.active.as_ref().map_or(0, |a| a.write_off) < 3 * RELEASE_CHUNK {
            for _ in 0..10 {
                zxid += 1;
                log.append(&big(zxid)).unwrap();
            }
            log.sync_blocking().unwrap();
        }
        let released = log.active.as_ref().unwrap().released_off;
        assert!(released >= 2 * RELEASE_CHUNK && released % page_size() == 0, "released up to {released}");
        // Appending after a release still works, and everything reads back.
        zxid += 1;
        log.append(&big(zxid)).unwrap();
        log.sync_blocking().unwrap();
        drop(log);
        let (seen, _) = reopen(&dir, 4 * RELEASE_CHUNK).unwrap();
        assert_eq!(seen, (1..=zxid).collect::<Vec<_>>());
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
