//! The on-disk record formats of log segments, and their checks.
//!
//! ```text
//! segment = segment-header record* zero-fill
//! segment-header = magic (8 bytes) | first-key u64 LE
//!                  genesis u8 (1: the first segment of this server's history,
//!                  so no earlier record exists) | reserved 15 zero bytes
//! zero-fill = zeros to the end of the preallocated segment (length 0 ends the log)
//! ```
//!
//! Two formats, told apart by the magic:
//!
//! ```text
//! V2 (magic "KPRLOG02", files raftlog.<first index>): raft entries, keyed by raft index
//! record  = length u32 LE     ; payload bytes, > 0
//!           crc32c u32 LE     ; over index, term and payload bytes
//!           index u64 LE
//!           term u64 LE
//!           payload           ; entry-type u8 | entry data (an rkyv Txn, or
//!                             ; nothing for a leader's no-op entry)
//!           padding           ; zeros to the next multiple of 8
//!
//! V1 (magic "KPRLOG01", files txnlog.<first zxid>): written before replication, read only
//! record  = length u32 LE | crc32c u32 LE (over zxid and payload) | zxid i64 LE
//!           payload (an rkyv Txn) | padding
//! ```
//! Records start on 8-byte boundaries so payloads can be read in place.

/// Bytes before the first record of a segment.
pub const SEGMENT_HEADER_LEN: usize = 32;

/// A record format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Transactions keyed by zxid (before replication).
    V1,
    /// raft entries keyed by index, with their term.
    V2,
}

impl Format {
    /// The segment magic.
    pub fn magic(self) -> &'static [u8; 8] {
        match self {
            Format::V1 => b"KPRLOG01",
            Format::V2 => b"KPRLOG02",
        }
    }

    /// Bytes of a record's header.
    pub fn header_len(self) -> usize {
        match self {
            Format::V1 => 16,
            Format::V2 => 24,
        }
    }

    /// The segment file name prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Format::V1 => "txnlog.",
            Format::V2 => "raftlog.",
        }
    }

    /// Total bytes a record with `payload_len` bytes occupies.
    pub fn record_len(self, payload_len: usize) -> usize {
        self.header_len() + padded(payload_len)
    }

    fn crc(self, key: u64, term: u64, payload: &[u8]) -> u32 {
        let mut crc = crc32c::crc32c(&key.to_le_bytes());
        if self == Format::V2 {
            crc = crc32c::crc32c_append(crc, &term.to_le_bytes());
        }
        crc32c::crc32c_append(crc, payload)
    }
}

/// Rounds up to the record alignment.
pub fn padded(len: usize) -> usize {
    len.div_ceil(8) * 8
}

/// What a segment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub format: Format,
    /// The key (V1: zxid, V2: index) of the segment's first record.
    pub first: u64,
    /// No record precedes this segment.
    pub genesis: bool,
}

/// Writes the segment header into `buf` (at least `SEGMENT_HEADER_LEN` bytes).
pub fn write_segment_header(buf: &mut [u8], header: SegmentHeader) {
    buf[..8].copy_from_slice(header.format.magic());
    buf[8..16].copy_from_slice(&header.first.to_le_bytes());
    buf[16] = header.genesis as u8;
    buf[17..SEGMENT_HEADER_LEN].fill(0);
}

/// Reads a segment header, or `None` when it is not one.
pub fn read_segment_header(buf: &[u8]) -> Option<SegmentHeader> {
    if buf.len() < SEGMENT_HEADER_LEN || buf[16] > 1 || buf[17..SEGMENT_HEADER_LEN].iter().any(|b| *b != 0) {
        return None;
    }
    let format = [Format::V1, Format::V2].into_iter().find(|f| &buf[..8] == f.magic())?;
    Some(SegmentHeader { format, first: u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes")), genesis: buf[16] == 1 })
}

/// Writes one record at the start of `buf`, which must hold
/// `format.record_len(payload.len())` bytes. V1 has no term: it must be 0.
pub fn write_record(format: Format, buf: &mut [u8], key: u64, term: u64, payload: &[u8]) {
    write_record_with(format, buf, key, term, payload.len(), |dst| dst.copy_from_slice(payload));
}

/// Writes one record whose `payload_len` payload bytes `fill` writes in
/// place (no copy through a buffer of its own).
pub fn write_record_with(format: Format, buf: &mut [u8], key: u64, term: u64, payload_len: usize, fill: impl FnOnce(&mut [u8])) {
    assert!(payload_len > 0, "empty payloads would read as the end of the log");
    assert!(format == Format::V2 || term == 0, "V1 records have no term");
    let total = format.record_len(payload_len);
    assert!(buf.len() >= total, "record does not fit");
    let start = format.header_len();
    fill(&mut buf[start..start + payload_len]);
    let crc = format.crc(key, term, &buf[start..start + payload_len]);
    let len = u32::try_from(payload_len).expect("records are smaller than 4 GiB");
    buf[..4].copy_from_slice(&len.to_le_bytes());
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    buf[8..16].copy_from_slice(&key.to_le_bytes());
    if format == Format::V2 {
        buf[16..24].copy_from_slice(&term.to_le_bytes());
    }
    buf[start + payload_len..total].fill(0);
}

/// What lies at an offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordAt<'a> {
    /// A valid record, and the offset of the next one.
    Valid { key: u64, term: u64, payload: &'a [u8], next: usize },
    /// A zero length: the log ends here.
    End,
    /// Not a valid record: torn, truncated or corrupt. The reason is for messages.
    Invalid(&'static str),
}

/// Reads the record at `off` in `seg` (the whole segment's bytes, or a batch of records).
pub fn read_record(format: Format, seg: &[u8], off: usize) -> RecordAt<'_> {
    debug_assert_eq!(off % 8, 0, "records are 8-byte aligned");
    if off + 4 > seg.len() {
        return if off == seg.len() { RecordAt::End } else { RecordAt::Invalid("length cut off") };
    }
    let len = u32::from_le_bytes(seg[off..off + 4].try_into().expect("4 bytes")) as usize;
    if len == 0 {
        return RecordAt::End;
    }
    let header = format.header_len();
    if off + header > seg.len() {
        return RecordAt::Invalid("header cut off");
    }
    let next = off + format.record_len(len);
    if next > seg.len() {
        return RecordAt::Invalid("length runs past the segment");
    }
    let crc = u32::from_le_bytes(seg[off + 4..off + 8].try_into().expect("4 bytes"));
    let key = u64::from_le_bytes(seg[off + 8..off + 16].try_into().expect("8 bytes"));
    let term = if format == Format::V2 { u64::from_le_bytes(seg[off + 16..off + 24].try_into().expect("8 bytes")) } else { 0 };
    let payload = &seg[off + header..off + header + len];
    if crc != format.crc(key, term, payload) {
        return RecordAt::Invalid("checksum mismatch");
    }
    RecordAt::Valid { key, term, payload, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_detected() {
        for format in [Format::V1, Format::V2] {
            let term = if format == Format::V2 { 3 } else { 0 };
            let mut seg = vec![0u8; 256];
            write_record(format, &mut seg[0..], 5, term, b"hello");
            let next = format.record_len(5);
            write_record(format, &mut seg[next..], 6, term, b"x");
            assert_eq!(read_record(format, &seg, 0), RecordAt::Valid { key: 5, term, payload: b"hello", next });
            assert!(matches!(read_record(format, &seg, next), RecordAt::Valid { key: 6, .. }));
            assert_eq!(read_record(format, &seg, next + format.record_len(1)), RecordAt::End);
            let at = format.header_len() + 2;
            seg[at] ^= 1;
            assert_eq!(read_record(format, &seg, 0), RecordAt::Invalid("checksum mismatch"), "{format:?}");
            assert_eq!(read_record(format, &seg[..format.header_len() + 4], 0), RecordAt::Invalid("length runs past the segment"));
            assert_eq!(read_record(format, &seg[..10], 0), RecordAt::Invalid("header cut off"));
        }
        let mut v2 = vec![0u8; 64];
        write_record(Format::V2, &mut v2, 1, 7, b"a");
        v2[17] ^= 1;
        assert_eq!(read_record(Format::V2, &v2, 0), RecordAt::Invalid("checksum mismatch"), "the term is checksummed");
    }

    #[test]
    fn segment_headers_name_their_format() {
        let mut buf = [0u8; SEGMENT_HEADER_LEN];
        for format in [Format::V1, Format::V2] {
            let header = SegmentHeader { format, first: 42, genesis: true };
            write_segment_header(&mut buf, header);
            assert_eq!(read_segment_header(&buf), Some(header));
        }
        buf[0] = b'X';
        assert_eq!(read_segment_header(&buf), None);
    }
}
