//! The on-disk record format shared by log segments, and its checks.
//!
//! ```text
//! segment = segment-header record* zero-fill
//! segment-header = magic "KPRLOG01" (8 bytes) | first-zxid i64 LE
//!                  genesis u8 (1: the first segment of this server's history,
//!                  so no earlier transaction exists) | reserved 15 bytes
//! record  = length u32 LE     ; payload bytes, > 0
//!           crc32c u32 LE     ; over zxid bytes + payload
//!           zxid i64 LE
//!           payload           ; an rkyv-archived Txn
//!           padding           ; zeros to the next multiple of 8
//! zero-fill = zeros to the end of the preallocated segment (length 0 ends the log)
//! ```
//! Records start on 8-byte boundaries so payloads can be read in place.

/// Bytes before the first record of a segment.
pub const SEGMENT_HEADER_LEN: usize = 32;
/// The segment magic.
pub const SEGMENT_MAGIC: &[u8; 8] = b"KPRLOG01";
/// Bytes of a record's header (length, crc, zxid).
pub const RECORD_HEADER_LEN: usize = 16;

/// Rounds up to the record alignment.
pub fn padded(len: usize) -> usize {
    len.div_ceil(8) * 8
}

/// Total bytes a record with `payload_len` bytes occupies.
pub fn record_len(payload_len: usize) -> usize {
    RECORD_HEADER_LEN + padded(payload_len)
}

fn crc_of(zxid: i64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&zxid.to_le_bytes()), payload)
}

/// What a segment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub first_zxid: i64,
    /// No transaction precedes this segment.
    pub genesis: bool,
}

/// Writes the segment header into `buf` (at least `SEGMENT_HEADER_LEN` bytes).
pub fn write_segment_header(buf: &mut [u8], header: SegmentHeader) {
    buf[..8].copy_from_slice(SEGMENT_MAGIC);
    buf[8..16].copy_from_slice(&header.first_zxid.to_le_bytes());
    buf[16] = header.genesis as u8;
    buf[17..SEGMENT_HEADER_LEN].fill(0);
}

/// Reads a segment header, or `None` when it is not one.
pub fn read_segment_header(buf: &[u8]) -> Option<SegmentHeader> {
    if buf.len() < SEGMENT_HEADER_LEN || &buf[..8] != SEGMENT_MAGIC || buf[16] > 1 || buf[17..SEGMENT_HEADER_LEN].iter().any(|b| *b != 0) {
        return None;
    }
    Some(SegmentHeader { first_zxid: i64::from_le_bytes(buf[8..16].try_into().expect("8 bytes")), genesis: buf[16] == 1 })
}

/// Writes one record at the start of `buf`, which must hold `record_len(payload.len())` bytes.
pub fn write_record(buf: &mut [u8], zxid: i64, payload: &[u8]) {
    assert!(!payload.is_empty(), "empty payloads would read as the end of the log");
    let total = record_len(payload.len());
    assert!(buf.len() >= total, "record does not fit");
    let len = u32::try_from(payload.len()).expect("records are smaller than 4 GiB");
    buf[..4].copy_from_slice(&len.to_le_bytes());
    buf[4..8].copy_from_slice(&crc_of(zxid, payload).to_le_bytes());
    buf[8..16].copy_from_slice(&zxid.to_le_bytes());
    buf[16..16 + payload.len()].copy_from_slice(payload);
    buf[16 + payload.len()..total].fill(0);
}

/// What lies at an offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordAt<'a> {
    /// A valid record, and the offset of the next one.
    Valid { zxid: i64, payload: &'a [u8], next: usize },
    /// A zero length: the log ends here.
    End,
    /// Not a valid record: torn, truncated or corrupt. The reason is for messages.
    Invalid(&'static str),
}

/// Reads the record at `off` in `seg` (the whole segment's bytes).
pub fn read_record(seg: &[u8], off: usize) -> RecordAt<'_> {
    debug_assert_eq!(off % 8, 0, "records are 8-byte aligned");
    if off + 4 > seg.len() {
        return if off == seg.len() { RecordAt::End } else { RecordAt::Invalid("length cut off") };
    }
    let len = u32::from_le_bytes(seg[off..off + 4].try_into().expect("4 bytes")) as usize;
    if len == 0 {
        return RecordAt::End;
    }
    if off + RECORD_HEADER_LEN > seg.len() {
        return RecordAt::Invalid("header cut off");
    }
    let next = off + record_len(len);
    if next > seg.len() {
        return RecordAt::Invalid("length runs past the segment");
    }
    let crc = u32::from_le_bytes(seg[off + 4..off + 8].try_into().expect("4 bytes"));
    let zxid = i64::from_le_bytes(seg[off + 8..off + 16].try_into().expect("8 bytes"));
    let payload = &seg[off + 16..off + 16 + len];
    if crc != crc_of(zxid, payload) {
        return RecordAt::Invalid("checksum mismatch");
    }
    RecordAt::Valid { zxid, payload, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_detected() {
        let mut seg = vec![0u8; 256];
        write_record(&mut seg[0..], 5, b"hello");
        let next = record_len(5);
        assert_eq!(next, 24);
        write_record(&mut seg[next..], 6, b"x");
        assert_eq!(read_record(&seg, 0), RecordAt::Valid { zxid: 5, payload: b"hello", next });
        assert!(matches!(read_record(&seg, next), RecordAt::Valid { zxid: 6, .. }));
        assert_eq!(read_record(&seg, next + record_len(1)), RecordAt::End);
        seg[18] ^= 1;
        assert_eq!(read_record(&seg, 0), RecordAt::Invalid("checksum mismatch"));
        assert_eq!(read_record(&seg[..20], 0), RecordAt::Invalid("length runs past the segment"));
        assert_eq!(read_record(&seg[..10], 0), RecordAt::Invalid("header cut off"));
    }
}
