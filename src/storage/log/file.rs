//! The transaction log in files: preallocated segments in
//! `<dataLogDir>/keeper-v1/`, named `txnlog.<first zxid, 16 hex digits>`,
//! and the hard state beside them (`hard_state`). Record format: see
//! [`crate::storage::record`].
//!
//! Writing: `append` encodes a record into its segment's batch buffer (no
//! syscall). `start_persist` hands out the [`PersistJob`] that makes
//! everything appended durable. In the common case, nothing rolled since
//! the last persist: it writes the batch into the segment file with one
//! `pwrite` (the page cache) and the job is one fdatasync, which the
//! broadcast core submits to its io_uring. When appends have rolled on to
//! new segments, the job is the whole roll, run by the caller on a thread
//! that may block: write and sync what the old segment still lacks, create
//! and preallocate (`fallocate`) the new one with a synced header, sync the
//! directory, then write and sync its records. So the old segment is
//! durable before records land in the new one, and no segment creation,
//! preallocation or directory sync ever runs on the caller's reactor. A
//! full disk shows up as the failure of the job that creates a segment.
//!
//! Why appends are not written through a shared mapping (measured, PERF.md):
//! after each sync's writeback the kernel write-protects the mapped pages it
//! cleaned, with a TLB shootdown to every CPU running keeper, and the next
//! append takes a write fault to dirty the page again (and split a huge
//! page mapping). At one sync per few writes that cost more server CPU than
//! a `pwrite` per batch. Reading stays memory-mapped: recovery, `read` and
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

use super::{HardState, Log, LogError, LogRecord, PersistWork, hard_state, io_err};
use crate::core::txn::Txn;
use crate::core::zxid::Zxid;
use crate::storage::record::{self, RecordAt, SEGMENT_HEADER_LEN, SegmentHeader};
use memmap2::Mmap;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The directory under dataDir / dataLogDir that holds keeper's files.
pub const DATA_SUBDIR: &str = "keeper-v1";
const SEGMENT_PREFIX: &str = "txnlog.";

/// A segment file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    pub path: PathBuf,
    pub first_zxid: Zxid,
}

/// The log's segment files in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>, LogError> {
    let files = crate::storage::naming::list(dir, SEGMENT_PREFIX).map_err(io_err(format!("listing {}", dir.display())))?;
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

/// A segment's file, or what creating it takes.
#[derive(Clone)]
enum Backing {
    File(Arc<File>),
    /// The next persist job creates the file with this header.
    ToCreate(SegmentHeader),
}

/// A segment with records that are not yet durable (or the active one).
struct Segment {
    path: PathBuf,
    backing: Backing,
    /// The preallocated length.
    size: usize,
    /// Where the next record goes (the batch included).
    end: usize,
    /// Records appended since the last `start_persist`: the bytes
    /// `[end - batch.len(), end)` of the segment.
    batch: Vec<u8>,
    /// The zxid of the last record appended to this segment.
    last_zxid: Zxid,
}

/// One segment's part of a roll: create it if need be, write its batch, sync.
struct SegmentWrite {
    path: PathBuf,
    dir: PathBuf,
    backing: Backing,
    size: usize,
    at: usize,
    /// Shared with the log, which reads these records from here until the job is done.
    bytes: Arc<Vec<u8>>,
}

impl SegmentWrite {
    /// Does this segment's part; returns the file it created, if it did.
    fn run(&mut self) -> io::Result<Option<Arc<File>>> {
        let (file, created) = match &self.backing {
            Backing::File(file) => (file.clone(), false),
            Backing::ToCreate(header) => {
                let file = Arc::new(create_segment(&self.path, self.size, *header)?);
                sync_dir(&self.dir).map_err(with_path("syncing directory", &self.dir))?;
                (file, true)
            }
        };
        file.write_all_at(&self.bytes, self.at as u64).map_err(with_path("writing", &self.path))?;
        file.sync_data().map_err(with_path("syncing", &self.path))?;
        Ok(created.then_some(file))
    }
}

/// The I/O of one persist: see the module documentation.
pub struct PersistJob {
    up_to: Zxid,
    work: JobWork,
}

enum JobWork {
    /// The batch is in the page cache: fdatasync this segment.
    Sync(Arc<File>),
    /// Appends rolled on to new segments: these steps, in order.
    Roll { steps: Vec<SegmentWrite>, created: Vec<(PathBuf, Arc<File>)> },
}

impl PersistJob {
    /// The segment to fdatasync, when that is the whole job: the caller may
    /// do it its own way (io_uring) instead of calling `run`.
    pub fn sync_file(&self) -> Option<&Arc<File>> {
        match &self.work {
            JobWork::Sync(file) => Some(file),
            JobWork::Roll { .. } => None,
        }
    }
}

impl PersistWork for PersistJob {
    fn up_to(&self) -> Zxid {
        self.up_to
    }

    /// Blocks: run it where blocking is allowed.
    fn run(&mut self) -> io::Result<()> {
        match &mut self.work {
            JobWork::Sync(file) => file.sync_data(),
            JobWork::Roll { steps, created } => {
                for step in steps.iter_mut() {
                    if let Some(file) = step.run()? {
                        created.push((step.path.clone(), file));
                    }
                }
                Ok(())
            }
        }
    }
}

/// The open log, positioned for appending.
pub struct TxnLog {
    dir: PathBuf,
    segment_bytes: usize,
    /// Segments with records not yet durable, oldest first; the last is the
    /// active one, where appends go. Empty before the first append.
    open: VecDeque<Segment>,
    last_zxid: Zxid,
    persisted_zxid: Zxid,
    /// The files hold every record up to here, and no job is writing them:
    /// `read` takes these from the files and later ones from memory.
    written_zxid: Zxid,
    /// The records of a roll in flight, until it finishes.
    in_flight: Vec<Arc<Vec<u8>>>,
    persisting: bool,
    /// The next segment created starts an empty history (no segment and no
    /// snapshot existed when the log was opened).
    genesis_next: bool,
    hard: HardState,
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
    pub fn open(dir: &Path, segment_bytes: usize, after_zxid: Zxid, mut replay: impl FnMut(Txn)) -> Result<(TxnLog, Recovery), LogError> {
        assert!(segment_bytes >= SEGMENT_HEADER_LEN + 64, "segments must hold at least a header and a record");
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let mut segments = list_segments(dir)?;
        remove_unborn(&mut segments)?;
        let mut log = TxnLog {
            dir: dir.to_path_buf(),
            segment_bytes,
            open: VecDeque::new(),
            last_zxid: Zxid::ZERO,
            persisted_zxid: Zxid::ZERO,
            written_zxid: Zxid::ZERO,
            in_flight: Vec::new(),
            persisting: false,
            genesis_next: segments.is_empty() && after_zxid == Zxid::ZERO,
            hard: hard_state::read(dir)?,
        };
        let mut recovery = Recovery::default();
        for (i, seg) in segments.iter().enumerate() {
            let is_last = i + 1 == segments.len();
            // A segment followed by one that starts at or before `after_zxid + 1`
            // holds only transactions the caller already has: it is not read,
            // as ZooKeeper reads no log file older than its snapshot needs.
            // The next segment must not be the last, which a crash may have
            // left without a record: the last zxid is then read from it.
            if i + 2 < segments.len() && segments[i + 1].first_zxid <= after_zxid.next() {
                continue;
            }
            let end = log.scan_segment(seg, is_last, after_zxid, &mut replay, &mut recovery)?;
            if is_last {
                log.activate_existing(seg, end)?;
            }
        }
        log.persisted_zxid = log.last_zxid;
        log.written_zxid = log.last_zxid;
        Ok((log, recovery))
    }

    /// Reads one segment; returns the offset where its records end.
    fn scan_segment(
        &mut self,
        seg: &SegmentFile,
        is_last: bool,
        after_zxid: Zxid,
        replay: &mut impl FnMut(Txn),
        recovery: &mut Recovery,
    ) -> Result<usize, LogError> {
        let map = map_segment(&seg.path)?;
        let corrupt = |offset: usize, why: String| LogError::Corrupt { file: seg.path.clone(), offset, why };
        match record::read_segment_header(&map) {
            Some(h) if h.first_zxid == seg.first_zxid.raw() => {}
            Some(h) => {
                return Err(corrupt(0, format!("header says first zxid {:#x}, name says {}", h.first_zxid, seg.first_zxid)));
            }
            None => return Err(corrupt(0, "bad segment header".into())),
        }
        let mut off = SEGMENT_HEADER_LEN;
        loop {
            match record::read_record(&map, off) {
                RecordAt::End => return Ok(off),
                RecordAt::Valid { zxid, payload, next } => {
                    let zxid = Zxid::from_raw(zxid);
                    if zxid <= self.last_zxid {
                        return Err(corrupt(off, format!("zxid {zxid} does not follow {}", self.last_zxid)));
                    }
                    if zxid > after_zxid {
                        let txn = Txn::from_bytes(payload).map_err(|e| corrupt(off, format!("record does not decode: {e}")))?;
                        if txn.zxid != zxid {
                            return Err(corrupt(off, format!("record zxid {zxid} holds transaction {}", txn.zxid)));
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

    /// Makes `seg` the active segment, its records ending at `end`.
    fn activate_existing(&mut self, seg: &SegmentFile, end: usize) -> Result<(), LogError> {
        let file = OpenOptions::new().read(true).write(true).open(&seg.path).map_err(io_err(format!("opening {}", seg.path.display())))?;
        let size = file.metadata().map_err(io_err(format!("reading the size of {}", seg.path.display())))?.len() as usize;
        zero_after(&file, &seg.path, end, size)?;
        self.open.push_back(Segment {
            path: seg.path.clone(),
            backing: Backing::File(Arc::new(file)),
            size,
            end,
            batch: Vec::new(),
            last_zxid: self.last_zxid,
        });
        Ok(())
    }

    /// Plans a new segment whose first record is `first_zxid` and needs
    /// `need` bytes; the next persist job creates its file.
    fn roll(&mut self, first_zxid: Zxid, need: usize) {
        let size = self.segment_bytes.max(SEGMENT_HEADER_LEN + need);
        let path = self.dir.join(crate::storage::naming::name(SEGMENT_PREFIX, first_zxid));
        let header = SegmentHeader { first_zxid: first_zxid.raw(), genesis: self.genesis_next };
        self.genesis_next = false;
        self.open.push_back(Segment { path, backing: Backing::ToCreate(header), size, end: SEGMENT_HEADER_LEN, batch: Vec::new(), last_zxid: first_zxid });
    }

    /// Appends a transaction (tools, tests and benchmarks; the server appends
    /// the payloads its sequencer serialized).
    pub fn append_txn(&mut self, txn: &Txn) {
        self.append(txn.zxid, &txn.to_bytes())
    }

    /// The segment that holds the last record at or before `zxid`, and that record's end.
    fn locate_end_of(&self, zxid: Zxid) -> Result<Option<(SegmentFile, usize)>, LogError> {
        let segments = list_segments(&self.dir)?;
        let Some(seg) = segments.iter().rev().find(|s| s.first_zxid <= zxid) else { return Ok(None) };
        let map = map_segment(&seg.path)?;
        let mut off = SEGMENT_HEADER_LEN;
        while let RecordAt::Valid { zxid: z, next, .. } = record::read_record(&map, off) {
            if Zxid::from_raw(z) > zxid {
                break;
            }
            off = next;
        }
        Ok(Some((seg.clone(), off)))
    }
}

impl Log for TxnLog {
    type Persist = PersistJob;

    fn append(&mut self, zxid: Zxid, payload: &[u8]) {
        assert!(zxid > self.last_zxid, "log appends in zxid order: {zxid} after {}", self.last_zxid);
        let need = record::record_len(payload.len());
        let fits = self.open.back().is_some_and(|a| a.end + need <= a.size);
        if !fits {
            self.roll(zxid, need);
        }
        let active = self.open.back_mut().expect("roll made a segment");
        let start = active.batch.len();
        active.batch.resize(start + need, 0);
        record::write_record(&mut active.batch[start..], zxid.raw(), payload);
        active.end += need;
        active.last_zxid = zxid;
        self.last_zxid = zxid;
        debug_assert!(active.end <= active.size, "a record never runs past its segment");
    }

    fn start_persist(&mut self) -> Result<Option<PersistJob>, LogError> {
        assert!(!self.persisting, "one persist at a time");
        if self.persisted_zxid == self.last_zxid {
            debug_assert!(self.open.iter().all(|s| s.batch.is_empty()), "every appended record is persisted");
            return Ok(None);
        }
        self.persisting = true;
        let up_to = self.last_zxid;
        if let [only] = self.open.make_contiguous()
            && let Backing::File(file) = &only.backing
        {
            let at = only.end - only.batch.len();
            file.write_all_at(&only.batch, at as u64).map_err(io_err(format!("writing {}", only.path.display())))?;
            only.batch.clear();
            self.written_zxid = up_to;
            return Ok(Some(PersistJob { up_to, work: JobWork::Sync(file.clone()) }));
        }
        let steps: Vec<SegmentWrite> = self
            .open
            .iter_mut()
            .map(|s| SegmentWrite {
                path: s.path.clone(),
                dir: self.dir.clone(),
                backing: s.backing.clone(),
                size: s.size,
                at: s.end - s.batch.len(),
                bytes: Arc::new(std::mem::take(&mut s.batch)),
            })
            .collect();
        self.in_flight = steps.iter().map(|step| step.bytes.clone()).collect();
        Ok(Some(PersistJob { up_to, work: JobWork::Roll { steps, created: Vec::new() } }))
    }

    fn finish_persist(&mut self, job: PersistJob) {
        assert!(self.persisting, "a persist was started");
        assert!(job.up_to <= self.last_zxid, "a persist covers appended records only");
        self.persisting = false;
        self.persisted_zxid = self.persisted_zxid.max(job.up_to);
        self.written_zxid = self.written_zxid.max(job.up_to);
        self.in_flight.clear();
        if let JobWork::Roll { created, .. } = job.work {
            for (path, file) in created {
                let seg = self.open.iter_mut().find(|s| s.path == path).expect("a created segment is open");
                seg.backing = Backing::File(file);
            }
        }
        // Older segments whose records are all durable are done with.
        while self.open.len() > 1 && self.open[0].last_zxid <= self.persisted_zxid {
            self.open.pop_front();
        }
        debug_assert!(self.open.iter().take(self.open.len().saturating_sub(1)).all(|s| !s.batch.is_empty()), "a sealed open segment awaits a persist");
    }

    fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    fn persisted_zxid(&self) -> Zxid {
        self.persisted_zxid
    }

    /// Blocks: persists what is pending, cuts the segment holding `zxid`
    /// after it (zeroed and synced), deletes later segments newest first
    /// (so a crash part-way leaves a prefix), and reopens.
    fn truncate_after(&mut self, zxid: Zxid) -> Result<(), LogError> {
        assert!(!self.persisting, "no truncation while a persist is in flight");
        if zxid >= self.last_zxid {
            return Ok(());
        }
        self.persist_blocking()?;
        let keep = self.locate_end_of(zxid)?;
        for seg in list_segments(&self.dir)?.iter().rev().filter(|s| s.first_zxid > zxid) {
            std::fs::remove_file(&seg.path).map_err(io_err(format!("removing {}", seg.path.display())))?;
        }
        if let Some((seg, end)) = keep {
            let file = OpenOptions::new().read(true).write(true).open(&seg.path).map_err(io_err(format!("opening {}", seg.path.display())))?;
            let size = file.metadata().map_err(io_err(format!("reading the size of {}", seg.path.display())))?.len() as usize;
            zero_after(&file, &seg.path, end, size)?;
        }
        sync_dir(&self.dir).map_err(io_err(format!("syncing directory {}", self.dir.display())))?;
        let (reopened, _) = TxnLog::open(&self.dir, self.segment_bytes, zxid, |txn| panic!("truncated the log after {zxid}, yet {} is left", txn.zxid))?;
        *self = reopened;
        assert_eq!(self.last_zxid, self.last_zxid.min(zxid), "the log ends at or before {zxid}");
        Ok(())
    }

    fn read(&self, after: Zxid, up_to: Zxid) -> Result<Vec<LogRecord>, LogError> {
        let mut out: Vec<LogRecord> = Vec::new();
        // Records come from three places, each later one holding only later
        // records: the files (up to `written_zxid`, where no job writes),
        // a roll in flight, and the batches not yet handed to a job.
        let mut take = |bytes: &[u8], mut off: usize, limit: Zxid| {
            while let RecordAt::Valid { zxid, payload, next } = record::read_record(bytes, off) {
                let zxid = Zxid::from_raw(zxid);
                if zxid > limit {
                    break;
                }
                if zxid > after && zxid <= up_to && out.last().is_none_or(|last| last.zxid < zxid) {
                    out.push(LogRecord { zxid, payload: payload.to_vec() });
                }
                off = next;
            }
        };
        let segments = list_segments(&self.dir)?;
        for (i, seg) in segments.iter().enumerate() {
            let wholly_before = segments.get(i + 1).is_some_and(|next| next.first_zxid <= after.next());
            if seg.first_zxid > up_to.min(self.written_zxid) || wholly_before {
                continue;
            }
            take(&map_segment(&seg.path)?, SEGMENT_HEADER_LEN, self.written_zxid);
        }
        for bytes in self.in_flight.iter().map(|b| b.as_slice()).chain(self.open.iter().map(|s| s.batch.as_slice())) {
            take(bytes, 0, Zxid::from_raw(i64::MAX));
        }
        debug_assert!(out.windows(2).all(|w| w[0].zxid < w[1].zxid), "records come back in zxid order");
        Ok(out)
    }

    fn hard_state(&self) -> HardState {
        self.hard
    }

    fn set_hard_state(&mut self, state: HardState) -> Result<(), LogError> {
        assert!(!self.persisting, "hard state changes between persists");
        hard_state::write(&self.dir, state)?;
        self.hard = state;
        Ok(())
    }
}

/// Maps a segment for reading.
fn map_segment(path: &Path) -> Result<Mmap, LogError> {
    let file = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    // SAFETY: segment bytes are only ever appended past what a reader looks at
    // (or zeroed by this process while it does not read them).
    unsafe { Mmap::map(&file) }.map_err(io_err(format!("mapping {}", path.display())))
}

/// Zeroes `[end, size)` of a segment durably, if anything there is not zero
/// (a torn tail, or records cut off by truncation).
fn zero_after(file: &File, path: &Path, end: usize, size: usize) -> Result<(), LogError> {
    // SAFETY: the file is only written by this process, which is not writing it now.
    let map = unsafe { Mmap::map(file) }.map_err(io_err(format!("mapping {}", path.display())))?;
    if map[end.min(map.len())..].iter().all(|b| *b == 0) {
        return Ok(());
    }
    let zeros = vec![0u8; (size - end).min(1 << 20)];
    let mut at = end;
    while at < size {
        let n = zeros.len().min(size - at);
        file.write_all_at(&zeros[..n], at as u64).map_err(io_err(format!("zeroing the tail of {}", path.display())))?;
        at += n;
    }
    file.sync_data().map_err(io_err(format!("zeroing the tail of {}", path.display())))
}

/// Adds what was being done, and to which file, to an `io::Error`.
fn with_path<'a>(what: &'a str, path: &'a Path) -> impl FnOnce(io::Error) -> io::Error + 'a {
    move |e| io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Creates a preallocated segment file with a durable header. A failure
/// after the file exists removes it: recovery would take a half-made
/// segment for damage.
fn create_segment(path: &Path, size: usize, header: SegmentHeader) -> io::Result<File> {
    let file = OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(with_path("creating", path))?;
    let fill = || -> io::Result<()> {
        preallocate(&file, size).map_err(with_path(&format!("preallocating {size} bytes for"), path))?;
        let mut bytes = [0u8; SEGMENT_HEADER_LEN];
        record::write_segment_header(&mut bytes, header);
        file.write_all_at(&bytes, 0).map_err(with_path("writing the header of", path))?;
        file.sync_data().map_err(with_path("syncing", path))
    };
    if let Err(e) = fill() {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
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
pub fn scan(path: &Path, mut visit: impl FnMut(Scanned)) -> Result<Zxid, LogError> {
    let map = map_segment(path)?;
    let first = record::read_segment_header(&map).map(|h| Zxid::from_raw(h.first_zxid)).ok_or_else(|| LogError::Corrupt {
        file: path.to_path_buf(),
        offset: 0,
        why: "bad segment header".into(),
    })?;
    let mut off = SEGMENT_HEADER_LEN;
    let mut last = Zxid::ZERO;
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
                last = Zxid::from_raw(zxid);
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
fn find_valid_record_after(seg: &[u8], bad_off: usize, last_zxid: Zxid) -> Option<usize> {
    let mut off = bad_off + 8;
    while off + record::RECORD_HEADER_LEN <= seg.len() {
        if let RecordAt::Valid { zxid, .. } = record::read_record(seg, off)
            && Zxid::from_raw(zxid) > last_zxid
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
        Txn { zxid: Zxid::from_raw(zxid), time_ms: zxid, session_id: 1, cxid: zxid as i32, body: TxnBody::Single(TxnOp::Delete { path: format!("/n{zxid}") }) }
    }

    fn reopen(dir: &Path, seg: usize) -> Result<(Vec<i64>, Recovery), LogError> {
        let mut seen = Vec::new();
        let (_, rec) = TxnLog::open(dir, seg, Zxid::ZERO, |t| seen.push(t.zxid.raw()))?;
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
        let (mut log, _) = TxnLog::open(&dir, 512, Zxid::ZERO, |_| {}).unwrap();
        for z in 1..=40 {
            log.append_txn(&txn(z));
            if z % 7 == 0 {
                log.persist_blocking().unwrap();
            }
        }
        log.persist_blocking().unwrap();
        drop(log);
        assert!(list_segments(&dir).unwrap().len() > 1);
        let (seen, rec) = reopen(&dir, 512).unwrap();
        assert_eq!(seen, (1..=40).collect::<Vec<_>>());
        assert!(rec.truncated_tail.is_none());
        // Appending continues after the last record.
        let (mut log, _) = TxnLog::open(&dir, 512, Zxid::from_raw(40), |_| panic!("nothing after 40")).unwrap();
        log.append_txn(&txn(41));
        log.persist_blocking().unwrap();
        assert_eq!(reopen(&dir, 512).unwrap().0.last(), Some(&41));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn segments_wholly_before_the_snapshot_are_not_read() {
        let dir = tempdir("skip");
        let (mut log, _) = TxnLog::open(&dir, 512, Zxid::ZERO, |_| {}).unwrap();
        for z in 1..=40 {
            log.append_txn(&txn(z));
            log.persist_blocking().unwrap();
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
        let after = segments[2].first_zxid.raw() - 1;
        let mut seen = Vec::new();
        let (log, _) = TxnLog::open(&dir, 512, Zxid::from_raw(after), |t| seen.push(t.zxid.raw())).unwrap();
        assert_eq!(seen, ((after + 1)..=40).collect::<Vec<_>>());
        assert_eq!(log.last_zxid(), Zxid::from_raw(40));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_persisted_batches_reach_the_file() {
        let dir = tempdir("batches");
        const SEGMENT: usize = 1 << 20;
        let (mut log, _) = TxnLog::open(&dir, SEGMENT, Zxid::ZERO, |_| {}).unwrap();
        let big = |zxid: i64| Txn {
            zxid: Zxid::from_raw(zxid),
            time_ms: zxid,
            session_id: 1,
            cxid: 1,
            body: TxnBody::Single(TxnOp::SetData { path: "/big".into(), data: Some(bytes::Bytes::from(vec![zxid as u8; 4000])), version: 1 }),
        };
        // Batches of ten across three segments, each written and synced.
        for zxid in 1..=800 {
            log.append_txn(&big(zxid));
            if zxid % 10 == 0 {
                let mut job = log.start_persist().unwrap().expect("a batch to persist");
                assert_eq!(job.up_to(), Zxid::from_raw(zxid));
                job.run().unwrap();
                log.finish_persist(job);
                assert!(log.start_persist().unwrap().is_none(), "nothing left to persist");
            }
        }
        assert!(list_segments(&dir).unwrap().len() >= 3);
        // A batch never persisted stays in memory: it was never acknowledged.
        log.append_txn(&big(801));
        drop(log);
        let (seen, rec) = reopen(&dir, SEGMENT).unwrap();
        assert_eq!(seen, (1..=800).collect::<Vec<_>>());
        assert!(rec.truncated_tail.is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_roll_is_planned_by_append_and_done_by_the_persist_job() {
        let dir = tempdir("roll");
        let (mut log, _) = TxnLog::open(&dir, 512, Zxid::ZERO, |_| {}).unwrap();
        log.append_txn(&txn(1));
        assert!(list_segments(&dir).unwrap().is_empty(), "appending creates no file");
        log.persist_blocking().unwrap();
        assert_eq!(list_segments(&dir).unwrap().len(), 1);
        // A persist in flight on the only segment; appends roll on meanwhile.
        log.append_txn(&txn(2));
        let mut sync = log.start_persist().unwrap().unwrap();
        assert!(sync.sync_file().is_some(), "without a roll, a persist is one fdatasync");
        for z in 3..=20 {
            log.append_txn(&txn(z));
        }
        assert_eq!(list_segments(&dir).unwrap().len(), 1, "rolling creates no file either");
        sync.run().unwrap();
        log.finish_persist(sync);
        let mut roll = log.start_persist().unwrap().unwrap();
        assert!(roll.sync_file().is_none(), "a roll needs the blocking job");
        log.append_txn(&txn(21));
        let all: Vec<i64> = log.read(Zxid::ZERO, Zxid::from_raw(99)).unwrap().iter().map(|r| r.zxid.raw()).collect();
        assert_eq!(all, (1..=21).collect::<Vec<_>>(), "records of a roll in flight are readable");
        roll.run().unwrap();
        log.finish_persist(roll);
        assert_eq!(log.persisted_zxid(), Zxid::from_raw(20));
        assert!(list_segments(&dir).unwrap().len() > 2, "the job made the new segments");
        log.persist_blocking().unwrap();
        drop(log);
        assert_eq!(reopen(&dir, 512).unwrap().0, (1..=21).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn truncation_cuts_mid_segment_and_drops_later_segments() {
        let dir = tempdir("truncate");
        let (mut log, _) = TxnLog::open(&dir, 512, Zxid::ZERO, |_| {}).unwrap();
        for z in 1..=30 {
            log.append_txn(&txn(z));
        }
        log.persist_blocking().unwrap();
        let before = list_segments(&dir).unwrap().len();
        log.truncate_after(Zxid::from_raw(9)).unwrap();
        assert!(list_segments(&dir).unwrap().len() < before);
        assert_eq!(log.last_zxid(), Zxid::from_raw(9));
        log.append_txn(&txn(10));
        log.persist_blocking().unwrap();
        drop(log);
        assert_eq!(reopen(&dir, 512).unwrap().0, (1..=10).collect::<Vec<_>>());
        let (mut log, _) = TxnLog::open(&dir, 512, Zxid::from_raw(10), |_| {}).unwrap();
        log.truncate_after(Zxid::ZERO).unwrap();
        assert_eq!(log.last_zxid(), Zxid::ZERO);
        assert!(list_segments(&dir).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_tail_is_cut_and_middle_damage_refused() {
        let dir = tempdir("torn");
        let (mut log, _) = TxnLog::open(&dir, 4096, Zxid::ZERO, |_| {}).unwrap();
        for z in 1..=5 {
            log.append_txn(&txn(z));
        }
        log.persist_blocking().unwrap();
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
