//! The raft log in files: preallocated segments in
//! `<dataLogDir>/keeper-v1/`, named `raftlog.<first index, 16 hex digits>`
//! (record format V2, see [`crate::storage::record`]), and the hard state
//! beside them (`hard_state`).
//!
//! Writing: `append` encodes an entry into its segment's batch buffer (no
//! syscall). `start_persist` hands out the [`PersistJob`] that makes
//! everything appended durable. In the common case, nothing rolled since
//! the last persist: it writes the batch into the segment file with one
//! `pwrite` (the page cache) and the job is one fdatasync, which the
//! broadcast core submits to its io_uring. When appends have rolled on to
//! new segments, the job is the whole roll, run by the caller on a thread
//! that may block: write and sync what the old segment still lacks, create
//! and preallocate (`fallocate`) the new one with a synced header, sync the
//! directory, then write and sync its entries. So the old segment is
//! durable before entries land in the new one, and no segment creation,
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
//! Recovery (`open`): the segments holding entries after the caller's
//! snapshot are read in order under the torn-tail rule of
//! [`crate::storage::segment`]; indexes must be contiguous.

use super::{HardState, Log, LogError, PersistWork, entry_of_record, entry_payload_len, hard_state, write_entry_payload};
use crate::storage::record::{self, Format, RecordAt, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::storage::segment::{self, io_err, sync_dir, with_path};
use raft::prelude::Entry;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The directory under dataDir / dataLogDir that holds keeper's files.
pub const DATA_SUBDIR: &str = "keeper-v1";

/// A segment's file, or what creating it takes.
#[derive(Clone)]
enum Backing {
    File(Arc<File>),
    /// The next persist job creates the file with this header.
    ToCreate(SegmentHeader),
}

/// A segment with entries that are not yet durable (or the active one).
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
    /// The index of the last entry appended to this segment.
    last_index: u64,
}

/// One segment's part of a roll: create it if need be, write its batch, sync.
struct SegmentWrite {
    path: PathBuf,
    dir: PathBuf,
    backing: Backing,
    size: usize,
    at: usize,
    /// Shared with the log, which reads these entries from here until the job is done.
    bytes: Arc<Vec<u8>>,
}

impl SegmentWrite {
    /// Does this segment's part; returns the file it created, if it did.
    fn run(&mut self) -> io::Result<Option<Arc<File>>> {
        let (file, created) = match &self.backing {
            Backing::File(file) => (file.clone(), false),
            Backing::ToCreate(header) => {
                let file = Arc::new(segment::create(&self.path, self.size, *header)?);
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
    up_to: u64,
    work: JobWork,
}

enum JobWork {
    /// The batch is in the page cache: fdatasync this segment.
    Sync(Arc<File>),
    /// A new hard state, or appends that rolled on to new segments: the
    /// hard state first, then these steps, in order.
    Steps { hard_state: Option<(PathBuf, HardState)>, steps: Vec<SegmentWrite>, created: Vec<(PathBuf, Arc<File>)> },
}

impl PersistJob {
    /// The segment to fdatasync, when that is the whole job: the caller may
    /// do it its own way (io_uring) instead of calling `run`.
    pub fn sync_file(&self) -> Option<&Arc<File>> {
        match &self.work {
            JobWork::Sync(file) => Some(file),
            JobWork::Steps { .. } => None,
        }
    }
}

impl PersistWork for PersistJob {
    fn up_to(&self) -> u64 {
        self.up_to
    }

    /// Blocks: run it where blocking is allowed.
    fn run(&mut self) -> io::Result<()> {
        match &mut self.work {
            JobWork::Sync(file) => file.sync_data(),
            JobWork::Steps { hard_state, steps, created } => {
                if let Some((dir, state)) = hard_state {
                    hard_state::write(dir, *state).map_err(|e| io::Error::other(e.to_string()))?;
                }
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
    /// Segments with entries not yet durable, oldest first; the last is the
    /// active one, where appends go. Empty before the first append.
    open: VecDeque<Segment>,
    last_index: u64,
    persisted_index: u64,
    /// The files hold every entry up to here, and no job is writing them:
    /// `read` takes these from the files and later ones from memory.
    written_index: u64,
    /// The records of a roll in flight, until it finishes.
    in_flight: Vec<Arc<Vec<u8>>>,
    persisting: bool,
    /// The next segment created starts an empty history (no entry before it).
    genesis_next: bool,
    hard: HardState,
}

/// What `open` found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Entries replayed (those after the caller's snapshot).
    pub replayed: u64,
    /// Where a torn tail was cut, if one was.
    pub truncated_tail: Option<(PathBuf, usize)>,
}

impl TxnLog {
    /// Opens the log in `dir` (created if missing), calls `replay` for every
    /// entry with an index above `after_index` in order, repairs a torn
    /// tail, and positions the writer after the last entry. `fresh`: no
    /// history precedes this log (no snapshot, no legacy log), so its first
    /// segment, if it makes one, is marked as the start of the history.
    pub fn open(dir: &Path, segment_bytes: usize, after_index: u64, fresh: bool, mut replay: impl FnMut(Entry)) -> Result<(TxnLog, Recovery), LogError> {
        assert!(segment_bytes >= SEGMENT_HEADER_LEN + 64, "segments must hold at least a header and a record");
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let mut segments = segment::list(dir, Format::V2)?;
        segment::remove_unborn(&mut segments)?;
        let mut log = TxnLog {
            dir: dir.to_path_buf(),
            segment_bytes,
            open: VecDeque::new(),
            last_index: 0,
            persisted_index: 0,
            written_index: 0,
            in_flight: Vec::new(),
            persisting: false,
            genesis_next: segments.is_empty() && fresh,
            hard: hard_state::read(dir)?,
        };
        let mut recovery = Recovery::default();
        for (i, seg) in segments.iter().enumerate() {
            let is_last = i + 1 == segments.len();
            // A segment followed by one that starts at or before `after_index + 1`
            // holds only entries the caller already has: it is not read. The
            // next segment must not be the last, which a crash may have left
            // without a record: the last index is then read from it.
            if i + 2 < segments.len() && segments[i + 1].first <= after_index + 1 {
                continue;
            }
            let (end, _, torn) = segment::read_records(seg, is_last, log.last_index, |r| {
                let corrupt = |why: String| LogError::Corrupt { file: seg.path.clone(), offset: r.offset, why };
                if r.offset == SEGMENT_HEADER_LEN && r.key != seg.first {
                    return Err(corrupt(format!("the segment's first entry is {}, its name says {}", r.key, seg.first)));
                }
                if log.last_index != 0 && r.key != log.last_index + 1 {
                    return Err(corrupt(format!("index {} does not follow {}", r.key, log.last_index)));
                }
                log.last_index = r.key;
                if r.key > after_index {
                    let entry = entry_of_record(r.key, r.term, r.payload).map_err(corrupt)?;
                    replay(entry);
                    recovery.replayed += 1;
                }
                Ok(())
            })?;
            if torn {
                recovery.truncated_tail = Some((seg.path.clone(), end));
            }
            if is_last {
                let (file, size) = segment::open_for_append(seg, end)?;
                log.open.push_back(Segment {
                    path: seg.path.clone(),
                    backing: Backing::File(Arc::new(file)),
                    size,
                    end,
                    batch: Vec::new(),
                    last_index: log.last_index,
                });
            }
        }
        log.persisted_index = log.last_index;
        log.written_index = log.last_index;
        Ok((log, recovery))
    }

    /// Plans a new segment whose first entry is `first` and needs `need`
    /// bytes; the next persist job creates its file.
    fn roll(&mut self, first: u64, need: usize) {
        let size = self.segment_bytes.max(SEGMENT_HEADER_LEN + need);
        let path = self.dir.join(crate::storage::naming::name(Format::V2.prefix(), first));
        let header = SegmentHeader { format: Format::V2, first, genesis: self.genesis_next };
        self.genesis_next = false;
        self.open.push_back(Segment { path, backing: Backing::ToCreate(header), size, end: SEGMENT_HEADER_LEN, batch: Vec::new(), last_index: first });
    }
}

impl TxnLog {
    /// The log restarts after a snapshot at `index` that replaced this
    /// server's state: every raft segment goes (the snapshot holds what
    /// they held, or they held entries raft has replaced), and the next
    /// entry is `index + 1`. Blocks on the deletions.
    pub fn reset_to(&mut self, index: u64) -> Result<(), LogError> {
        assert!(!self.persisting, "no reset while a persist is in flight");
        for seg in segment::list(&self.dir, Format::V2)?.iter().rev() {
            std::fs::remove_file(&seg.path).map_err(io_err(format!("removing {}", seg.path.display())))?;
        }
        sync_dir(&self.dir).map_err(io_err(format!("syncing directory {}", self.dir.display())))?;
        self.open.clear();
        self.in_flight.clear();
        self.genesis_next = false;
        (self.last_index, self.persisted_index, self.written_index) = (index, index, index);
        Ok(())
    }
}

impl Log for TxnLog {
    type Persist = PersistJob;

    fn append(&mut self, entry: &Entry) {
        assert_eq!(entry.index, self.last_index + 1, "log appends continue the log");
        let payload_len = entry_payload_len(entry);
        let need = Format::V2.record_len(payload_len);
        let fits = self.open.back().is_some_and(|a| a.end + need <= a.size);
        if !fits {
            self.roll(entry.index, need);
        }
        let active = self.open.back_mut().expect("roll made a segment");
        let start = active.batch.len();
        active.batch.resize(start + need, 0);
        record::write_record_with(Format::V2, &mut active.batch[start..], entry.index, entry.term, payload_len, |payload| write_entry_payload(entry, payload));
        active.end += need;
        active.last_index = entry.index;
        self.last_index = entry.index;
        debug_assert!(active.end <= active.size, "a record never runs past its segment");
    }

    fn start_persist(&mut self, hard_state: Option<HardState>) -> Result<Option<PersistJob>, LogError> {
        assert!(!self.persisting, "one persist at a time");
        if self.persisted_index == self.last_index && hard_state.is_none() {
            debug_assert!(self.open.iter().all(|s| s.batch.is_empty()), "every appended entry is persisted");
            return Ok(None);
        }
        self.persisting = true;
        let up_to = self.last_index;
        if hard_state.is_none()
            && let [only] = self.open.make_contiguous()
            && let Backing::File(file) = &only.backing
        {
            let at = only.end - only.batch.len();
            file.write_all_at(&only.batch, at as u64).map_err(io_err(format!("writing {}", only.path.display())))?;
            only.batch.clear();
            self.written_index = up_to;
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
        let hard_state = hard_state.map(|state| (self.dir.clone(), state));
        Ok(Some(PersistJob { up_to, work: JobWork::Steps { hard_state, steps, created: Vec::new() } }))
    }

    fn finish_persist(&mut self, job: PersistJob) {
        assert!(self.persisting, "a persist was started");
        assert!(job.up_to <= self.last_index, "a persist covers appended entries only");
        self.persisting = false;
        self.persisted_index = self.persisted_index.max(job.up_to);
        self.written_index = self.written_index.max(job.up_to);
        self.in_flight.clear();
        if let JobWork::Steps { hard_state, created, .. } = job.work {
            if let Some((_, state)) = hard_state {
                self.hard = state;
            }
            for (path, file) in created {
                let seg = self.open.iter_mut().find(|s| s.path == path).expect("a created segment is open");
                seg.backing = Backing::File(file);
            }
        }
        // Older segments whose entries are all durable are done with.
        while self.open.len() > 1 && self.open[0].last_index <= self.persisted_index {
            self.open.pop_front();
        }
        debug_assert!(self.open.iter().take(self.open.len().saturating_sub(1)).all(|s| !s.batch.is_empty()), "a sealed open segment awaits a persist");
    }

    fn last_index(&self) -> u64 {
        self.last_index
    }

    fn persisted_index(&self) -> u64 {
        self.persisted_index
    }

    /// Blocks: persists what is pending, cuts the segment holding `index`
    /// after it (zeroed and synced), deletes later segments newest first
    /// (so a crash part-way leaves a prefix), and reopens.
    fn truncate_after(&mut self, index: u64) -> Result<(), LogError> {
        assert!(!self.persisting, "no truncation while a persist is in flight");
        if index >= self.last_index {
            return Ok(());
        }
        self.persist_blocking(None)?;
        let segments = segment::list(&self.dir, Format::V2)?;
        for seg in segments.iter().rev().filter(|s| s.first > index) {
            std::fs::remove_file(&seg.path).map_err(io_err(format!("removing {}", seg.path.display())))?;
        }
        if let Some(seg) = segments.iter().rev().find(|s| s.first <= index) {
            segment::cut_after(seg, index)?;
        }
        sync_dir(&self.dir).map_err(io_err(format!("syncing directory {}", self.dir.display())))?;
        let (reopened, _) =
            TxnLog::open(&self.dir, self.segment_bytes, index, index == 0, |e| panic!("truncated the log after {index}, yet {} is left", e.index))?;
        *self = reopened;
        assert!(self.last_index <= index, "the log ends at or before {index}");
        Ok(())
    }

    fn read(&self, after: u64, up_to: u64) -> Result<Vec<Entry>, LogError> {
        let mut out: Vec<Entry> = Vec::new();
        let mut failure = None;
        // Entries come from three places, each later one holding only later
        // entries: the files (up to `written_index`, where no job writes),
        // a roll in flight, and the batches not yet handed to a job.
        let mut take = |bytes: &[u8], mut off: usize, limit: u64| {
            while let RecordAt::Valid { key, term, payload, next } = record::read_record(Format::V2, bytes, off) {
                if key > limit {
                    break;
                }
                if key > after && key <= up_to && out.last().is_none_or(|last| last.index < key) {
                    match entry_of_record(key, term, payload) {
                        Ok(e) => out.push(e),
                        Err(why) => failure = Some(why),
                    }
                }
                off = next;
            }
        };
        let segments = segment::list(&self.dir, Format::V2)?;
        for (i, seg) in segments.iter().enumerate() {
            let wholly_before = segments.get(i + 1).is_some_and(|next| next.first <= after + 1);
            if seg.first > up_to.min(self.written_index) || wholly_before {
                continue;
            }
            take(&segment::map(&seg.path)?, SEGMENT_HEADER_LEN, self.written_index);
        }
        for bytes in self.in_flight.iter().map(|b| b.as_slice()).chain(self.open.iter().map(|s| s.batch.as_slice())) {
            take(bytes, 0, u64::MAX);
        }
        if let Some(why) = failure {
            return Err(LogError::Corrupt { file: self.dir.clone(), offset: 0, why });
        }
        debug_assert!(out.windows(2).all(|w| w[1].index == w[0].index + 1), "entries come back contiguous");
        Ok(out)
    }

    fn hard_state(&self) -> HardState {
        self.hard
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::segment::SegmentFile;

    /// An entry of about a transaction's size: six to a 512-byte segment.
    fn entry(index: u64) -> Entry {
        Entry { index, term: 1, data: format!("/n{index:<40}").into_bytes().into(), ..Default::default() }
    }

    fn big(index: u64) -> Entry {
        Entry { index, term: 2, data: vec![index as u8; 4000].into(), ..Default::default() }
    }

    fn reopen(dir: &Path, seg: usize) -> Result<(Vec<u64>, Recovery), LogError> {
        let mut seen = Vec::new();
        let (_, rec) = TxnLog::open(dir, seg, 0, true, |e| seen.push(e.index))?;
        Ok((seen, rec))
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("keeper-log-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn segments(dir: &Path) -> Vec<SegmentFile> {
        segment::list(dir, Format::V2).unwrap()
    }

    #[test]
    fn appends_survive_reopen_across_segments() {
        let dir = tempdir("segments");
        let (mut log, _) = TxnLog::open(&dir, 512, 0, true, |_| {}).unwrap();
        for i in 1..=40 {
            log.append(&entry(i));
            if i % 7 == 0 {
                log.persist_blocking(None).unwrap();
            }
        }
        log.persist_blocking(None).unwrap();
        drop(log);
        assert!(segments(&dir).len() > 1);
        assert!(segment::is_genesis(&segments(&dir)[0]).unwrap(), "the first segment starts the history");
        let (seen, rec) = reopen(&dir, 512).unwrap();
        assert_eq!(seen, (1..=40).collect::<Vec<_>>());
        assert!(rec.truncated_tail.is_none());
        // Appending continues after the last entry.
        let (mut log, _) = TxnLog::open(&dir, 512, 40, true, |_| panic!("nothing after 40")).unwrap();
        log.append(&entry(41));
        log.persist_blocking(None).unwrap();
        assert_eq!(reopen(&dir, 512).unwrap().0.last(), Some(&41));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn segments_wholly_before_the_snapshot_are_not_read() {
        let dir = tempdir("skip");
        let (mut log, _) = TxnLog::open(&dir, 512, 0, true, |_| {}).unwrap();
        for i in 1..=40 {
            log.append(&entry(i));
            log.persist_blocking(None).unwrap();
        }
        drop(log);
        let segs = segments(&dir);
        assert!(segs.len() > 3);
        // Damage the first segment: recovery from index 0 refuses, from a
        // later snapshot (which does not need that segment) it does not look.
        let mut bytes = std::fs::read(&segs[0].path).unwrap();
        bytes[SEGMENT_HEADER_LEN + 30] ^= 0xff;
        std::fs::write(&segs[0].path, &bytes).unwrap();
        assert!(reopen(&dir, 512).is_err());
        let after = segs[2].first - 1;
        let mut seen = Vec::new();
        let (log, _) = TxnLog::open(&dir, 512, after, true, |e| seen.push(e.index)).unwrap();
        assert_eq!(seen, ((after + 1)..=40).collect::<Vec<_>>());
        assert_eq!(log.last_index(), 40);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_persisted_batches_reach_the_file() {
        let dir = tempdir("batches");
        const SEGMENT: usize = 1 << 20;
        let (mut log, _) = TxnLog::open(&dir, SEGMENT, 0, true, |_| {}).unwrap();
        // Batches of ten across three segments, each written and synced.
        for i in 1..=800 {
            log.append(&big(i));
            if i % 10 == 0 {
                let mut job = log.start_persist(None).unwrap().expect("a batch to persist");
                assert_eq!(job.up_to(), i);
                job.run().unwrap();
                log.finish_persist(job);
                assert!(log.start_persist(None).unwrap().is_none(), "nothing left to persist");
            }
        }
        assert!(segments(&dir).len() >= 3);
        // A batch never persisted stays in memory: it was never acknowledged.
        log.append(&big(801));
        drop(log);
        let (seen, rec) = reopen(&dir, SEGMENT).unwrap();
        assert_eq!(seen, (1..=800).collect::<Vec<_>>());
        assert!(rec.truncated_tail.is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_roll_is_planned_by_append_and_done_by_the_persist_job() {
        let dir = tempdir("roll");
        let (mut log, _) = TxnLog::open(&dir, 512, 0, true, |_| {}).unwrap();
        log.append(&entry(1));
        assert!(segments(&dir).is_empty(), "appending creates no file");
        log.persist_blocking(None).unwrap();
        assert_eq!(segments(&dir).len(), 1);
        // A persist in flight on the only segment; appends roll on meanwhile.
        log.append(&entry(2));
        let mut sync = log.start_persist(None).unwrap().unwrap();
        assert!(sync.sync_file().is_some(), "without a roll, a persist is one fdatasync");
        for i in 3..=20 {
            log.append(&entry(i));
        }
        assert_eq!(segments(&dir).len(), 1, "rolling creates no file either");
        sync.run().unwrap();
        log.finish_persist(sync);
        let mut roll = log.start_persist(None).unwrap().unwrap();
        assert!(roll.sync_file().is_none(), "a roll needs the blocking job");
        log.append(&entry(21));
        let all: Vec<u64> = log.read(0, 99).unwrap().iter().map(|e| e.index).collect();
        assert_eq!(all, (1..=21).collect::<Vec<_>>(), "entries of a roll in flight are readable");
        roll.run().unwrap();
        log.finish_persist(roll);
        assert_eq!(log.persisted_index(), 20);
        assert!(segments(&dir).len() > 2, "the job made the new segments");
        log.persist_blocking(None).unwrap();
        drop(log);
        assert_eq!(reopen(&dir, 512).unwrap().0, (1..=21).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn truncation_cuts_mid_segment_and_drops_later_segments() {
        let dir = tempdir("truncate");
        let (mut log, _) = TxnLog::open(&dir, 512, 0, true, |_| {}).unwrap();
        for i in 1..=30 {
            log.append(&entry(i));
        }
        log.persist_blocking(None).unwrap();
        let before = segments(&dir).len();
        log.truncate_after(9).unwrap();
        assert!(segments(&dir).len() < before);
        assert_eq!(log.last_index(), 9);
        log.append(&entry(10));
        log.persist_blocking(None).unwrap();
        drop(log);
        assert_eq!(reopen(&dir, 512).unwrap().0, (1..=10).collect::<Vec<_>>());
        let (mut log, _) = TxnLog::open(&dir, 512, 10, true, |_| {}).unwrap();
        log.truncate_after(0).unwrap();
        assert_eq!(log.last_index(), 0);
        assert!(segments(&dir).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_tail_is_cut_and_middle_damage_refused() {
        let dir = tempdir("torn");
        let (mut log, _) = TxnLog::open(&dir, 4096, 0, true, |_| {}).unwrap();
        for i in 1..=5 {
            log.append(&entry(i));
        }
        log.persist_blocking(None).unwrap();
        drop(log);
        let seg = segments(&dir).pop().unwrap().path;
        let pristine = std::fs::read(&seg).unwrap();
        let rec_len = Format::V2.record_len(entry_payload_len(&entry(1)));
        let last_start = SEGMENT_HEADER_LEN + 4 * rec_len;
        // Damage inside the last record's payload: a torn tail.
        let mut bytes = pristine.clone();
        bytes[last_start + 26] ^= 0xff;
        std::fs::write(&seg, &bytes).unwrap();
        let (seen, rec) = reopen(&dir, 4096).unwrap();
        assert_eq!(seen, vec![1, 2, 3, 4]);
        assert_eq!(rec.truncated_tail.unwrap().1, last_start);
        // Damage inside the second record: valid records follow, so refuse.
        let mut bytes = pristine.clone();
        bytes[SEGMENT_HEADER_LEN + rec_len + 26] ^= 0xff;
        std::fs::write(&seg, &bytes).unwrap();
        let err = reopen(&dir, 4096).unwrap_err().to_string();
        assert!(err.contains("corrupt at offset") && err.contains("valid record follows"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
