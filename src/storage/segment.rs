//! Log segment files, in either record format (see [`super::record`]):
//! listing, scanning with the torn-tail rule, creating, repairing.
//!
//! The torn-tail rule: segments are read in order and every record must be
//! valid, with strictly increasing keys. The first invalid record of the
//! *last* segment ends the log if nothing valid follows it (a crash during
//! the last unsynced batch): it is zeroed out, with a log line. An invalid
//! record anywhere else, or one followed by a valid record, is corruption
//! of durable data: reading stops with an error naming the file and offset.

use super::log::LogError;
use super::record::{self, Format, RecordAt, SEGMENT_HEADER_LEN, SegmentHeader};
use memmap2::Mmap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// An `io::Error` as a `LogError`, with what was being done.
pub fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> LogError {
    let what = what.into();
    move |err| LogError::Io { what, err }
}

/// Adds what was being done, and to which file, to an `io::Error`.
pub fn with_path<'a>(what: &'a str, path: &'a Path) -> impl FnOnce(io::Error) -> io::Error + 'a {
    move |e| io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// A segment file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    pub path: PathBuf,
    pub format: Format,
    /// The key of its first record, from its name (V1: zxid, V2: index).
    pub first: u64,
}

/// The segment files of `format` in `dir`, oldest first.
pub fn list(dir: &Path, format: Format) -> Result<Vec<SegmentFile>, LogError> {
    let files = super::naming::list(dir, format.prefix()).map_err(io_err(format!("listing {}", dir.display())))?;
    Ok(files.into_iter().map(|(path, first)| SegmentFile { path, format, first }).collect())
}

/// Maps a segment for reading.
pub fn map(path: &Path) -> Result<Mmap, LogError> {
    let file = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    // SAFETY: segment bytes are only ever appended past what a reader looks at
    // (or zeroed by this process while it does not read them).
    unsafe { Mmap::map(&file) }.map_err(io_err(format!("mapping {}", path.display())))
}

/// Whether a segment is the first of its server's history.
pub fn is_genesis(segment: &SegmentFile) -> Result<bool, LogError> {
    Ok(checked_header(&map(&segment.path)?, segment)?.genesis)
}

/// The segment's header, which must match its name.
fn checked_header(bytes: &[u8], seg: &SegmentFile) -> Result<SegmentHeader, LogError> {
    let corrupt = |why: String| LogError::Corrupt { file: seg.path.clone(), offset: 0, why };
    match record::read_segment_header(bytes) {
        Some(h) if h.format == seg.format && h.first == seg.first => Ok(h),
        Some(h) => Err(corrupt(format!("header says {:?} from {:#x}, name says {:?} from {:#x}", h.format, h.first, seg.format, seg.first))),
        None => Err(corrupt("bad segment header".into())),
    }
}

/// One valid record met by [`read_records`].
pub struct Record<'a> {
    pub key: u64,
    pub term: u64,
    pub payload: &'a [u8],
    pub offset: usize,
}

/// Reads every record of `seg` in order, handing each to `visit`; applies
/// the torn-tail rule (`is_last`: this is the log's last segment) and
/// checks that keys increase, starting above `prev_key` (the previous
/// segment's last key, or 0). Returns the offset where the records end, the
/// last key, and whether a torn tail was cut there.
pub fn read_records(
    seg: &SegmentFile,
    is_last: bool,
    prev_key: u64,
    visit: impl FnMut(Record<'_>) -> Result<(), LogError>,
) -> Result<(usize, u64, bool), LogError> {
    let bytes = map(&seg.path)?;
    checked_header(&bytes, seg)?;
    read_records_in(&bytes, seg, is_last, prev_key, visit)
}

/// [`read_records`] over `seg`'s bytes, already read and their header
/// checked (the simulator's disk holds segments in memory).
pub fn read_records_in(
    bytes: &[u8],
    seg: &SegmentFile,
    is_last: bool,
    prev_key: u64,
    mut visit: impl FnMut(Record<'_>) -> Result<(), LogError>,
) -> Result<(usize, u64, bool), LogError> {
    let corrupt = |offset: usize, why: String| LogError::Corrupt { file: seg.path.clone(), offset, why };
    let mut off = SEGMENT_HEADER_LEN;
    let mut last = prev_key;
    loop {
        match record::read_record(seg.format, bytes, off) {
            RecordAt::End => return Ok((off, last, false)),
            RecordAt::Valid { key, term, payload, next } => {
                if key <= last {
                    return Err(corrupt(off, format!("key {key:#x} does not follow {last:#x}")));
                }
                visit(Record { key, term, payload, offset: off })?;
                last = key;
                off = next;
            }
            RecordAt::Invalid(why) => {
                if !is_last {
                    return Err(corrupt(off, why.to_string()));
                }
                if let Some(valid_at) = find_valid_record_after(seg.format, bytes, off, last) {
                    return Err(corrupt(off, format!("{why}, but a valid record follows at offset {valid_at}")));
                }
                tracing::warn!("transaction log {}: torn tail at offset {off} ({why}); truncating the unacknowledged remainder", seg.path.display());
                return Ok((off, last, true));
            }
        }
    }
}

/// Looks for a valid record with a key above `last` anywhere after the
/// invalid one at `bad_off`: if one exists, the damage is not a torn tail.
fn find_valid_record_after(format: Format, seg: &[u8], bad_off: usize, last: u64) -> Option<usize> {
    let mut off = bad_off + 8;
    while off + format.header_len() <= seg.len() {
        if let RecordAt::Valid { key, .. } = record::read_record(format, seg, off)
            && key > last
        {
            return Some(off);
        }
        off += 8;
    }
    None
}

/// Opens a segment for appending after its records end at `end`, zeroing
/// anything after them (a torn tail) durably; returns the file and its size.
pub fn open_for_append(seg: &SegmentFile, end: usize) -> Result<(File, usize), LogError> {
    let file = OpenOptions::new().read(true).write(true).open(&seg.path).map_err(io_err(format!("opening {}", seg.path.display())))?;
    let size = file.metadata().map_err(io_err(format!("reading the size of {}", seg.path.display())))?.len() as usize;
    zero_after(&file, &seg.path, end, size)?;
    Ok((file, size))
}

/// Zeroes `[end, size)` of a segment durably, if anything there is not zero.
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

/// Cuts a segment after its records with keys up to `key` (zeroed and synced).
pub fn cut_after(seg: &SegmentFile, key: u64) -> Result<(), LogError> {
    let bytes = map(&seg.path)?;
    let mut end = SEGMENT_HEADER_LEN;
    while let RecordAt::Valid { key: k, next, .. } = record::read_record(seg.format, &bytes, end) {
        if k > key {
            break;
        }
        end = next;
    }
    drop(bytes);
    open_for_append(seg, end).map(|_| ())
}

/// Creates a preallocated segment file with a durable header. A failure
/// after the file exists removes it: recovery would take a half-made
/// segment for damage.
pub fn create(path: &Path, size: usize, header: SegmentHeader) -> io::Result<File> {
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
pub fn remove_unborn(segments: &mut Vec<SegmentFile>) -> Result<(), LogError> {
    let Some(last) = segments.last() else { return Ok(()) };
    let mut head = Vec::with_capacity(SEGMENT_HEADER_LEN);
    let file = File::open(&last.path).map_err(io_err(format!("opening {}", last.path.display())))?;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, SEGMENT_HEADER_LEN as u64), &mut head)
        .map_err(io_err(format!("reading {}", last.path.display())))?;
    if head.len() == SEGMENT_HEADER_LEN && head.iter().any(|b| *b != 0) {
        return Ok(());
    }
    tracing::info!("removing {}: its creation never completed (no header), so it holds no record", last.path.display());
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

/// What [`scan`] meets in a segment, for `keeper log dump`.
#[derive(Debug)]
pub enum Scanned<'a> {
    /// A valid record at this offset, in the segment's format.
    Record { offset: usize, format: Format, key: u64, term: u64, payload: &'a [u8] },
    /// The records end cleanly at this offset.
    End { offset: usize },
    /// An invalid record: `torn` when nothing valid follows (a crash tail).
    Invalid { offset: usize, why: String, torn: bool },
}

/// Reads one segment file without repairing anything; returns its header.
pub fn scan(path: &Path, mut visit: impl FnMut(Scanned<'_>)) -> Result<SegmentHeader, LogError> {
    let bytes = map(path)?;
    let header =
        record::read_segment_header(&bytes).ok_or_else(|| LogError::Corrupt { file: path.to_path_buf(), offset: 0, why: "bad segment header".into() })?;
    let mut off = SEGMENT_HEADER_LEN;
    let mut last = 0;
    loop {
        match record::read_record(header.format, &bytes, off) {
            RecordAt::End => {
                visit(Scanned::End { offset: off });
                return Ok(header);
            }
            RecordAt::Valid { key, term, payload, next } => {
                visit(Scanned::Record { offset: off, format: header.format, key, term, payload });
                last = key;
                off = next;
            }
            RecordAt::Invalid(why) => {
                let torn = find_valid_record_after(header.format, &bytes, off, last).is_none();
                visit(Scanned::Invalid { offset: off, why: why.to_string(), torn });
                return Ok(header);
            }
        }
    }
}
