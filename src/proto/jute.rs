//! Jute, ZooKeeper's record encoding: the primitive readers and writers.
//!
//! Grammar (all integers big-endian):
//! ```text
//! int     = i32
//! long    = i64
//! boolean = u8            ; 0 false, anything else true
//! buffer  = i32 len, len bytes      ; len -1 means null
//! ustring = buffer (UTF-8)          ; len -1 means null
//! vector  = i32 count, count items  ; count -1 means null, below -1 empty
//! ```
//! Reading is zero-copy: `buffer` values are slices of the frame's `Bytes`.
//! Every read checks its length first, so a truncated or hostile frame gives
//! [`DecodeError`] and never a panic or an allocation sized by the peer.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The frame ended before the record did.
    Truncated,
    /// A length or count was negative (other than -1) or larger than the frame.
    BadLength(i32),
    /// A null string where a value is required (Java's NullPointerException).
    Null,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "record truncated"),
            DecodeError::BadLength(n) => write!(f, "bad length {n}"),
            DecodeError::Null => write!(f, "null where a value is required"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Result of decoding one field or record.
pub type DecodeResult<T> = Result<T, DecodeError>;

/// Reads jute primitives from one frame held in a `Bytes`.
pub struct JuteReader {
    buf: Bytes,
}

impl JuteReader {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: Bytes) -> Self {
        JuteReader { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.remaining()
    }

    fn need(&self, n: usize) -> DecodeResult<()> {
        if self.buf.remaining() < n {
            return Err(DecodeError::Truncated);
        }
        Ok(())
    }

    /// Reads an `int`.
    pub fn int(&mut self) -> DecodeResult<i32> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    /// Reads a `long`.
    pub fn long(&mut self) -> DecodeResult<i64> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    /// Reads a `boolean`.
    pub fn boolean(&mut self) -> DecodeResult<bool> {
        self.need(1)?;
        Ok(self.buf.get_u8() != 0)
    }

    /// Reads a length prefix: `None` for -1, an error for other negatives or
    /// lengths longer than what is left of the frame.
    fn length(&mut self) -> DecodeResult<Option<usize>> {
        let len = self.int()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as usize > self.buf.remaining() {
            return Err(DecodeError::BadLength(len));
        }
        Ok(Some(len as usize))
    }

    /// Reads a `buffer`; `None` is the null buffer.
    pub fn buffer(&mut self) -> DecodeResult<Option<Bytes>> {
        Ok(self.length()?.map(|len| self.buf.split_to(len)))
    }

    /// Reads a `ustring` that may be null. Invalid UTF-8 becomes U+FFFD, as
    /// Java's decoder does (ZooKeeper then rejects such paths as invalid).
    pub fn ustring_opt(&mut self) -> DecodeResult<Option<String>> {
        Ok(self.buffer()?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Reads a `ustring` that must not be null.
    pub fn ustring(&mut self) -> DecodeResult<String> {
        self.ustring_opt()?.ok_or(DecodeError::Null)
    }

    /// Reads a vector count; `None` is the null vector, and a count below -1
    /// is an empty vector (Java's loop runs zero times). Each element takes at
    /// least one byte, so a count above the bytes left is rejected up front.
    pub fn count(&mut self) -> DecodeResult<Option<usize>> {
        let n = self.int()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 {
            return Ok(Some(0));
        }
        if n as usize > self.buf.remaining() {
            return Err(DecodeError::BadLength(n));
        }
        Ok(Some(n as usize))
    }

    /// Reads a `vector<ustring>` that may be null.
    pub fn strings_opt(&mut self) -> DecodeResult<Option<Vec<String>>> {
        let Some(n) = self.count()? else { return Ok(None) };
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.ustring()?);
        }
        Ok(Some(out))
    }

    /// Reads a `vector<ustring>`; a null vector is an error, as where the
    /// server iterates it.
    pub fn strings(&mut self) -> DecodeResult<Vec<String>> {
        self.strings_opt()?.ok_or(DecodeError::Null)
    }
}

/// Writes jute primitives into a growing `BytesMut`.
pub struct JuteWriter<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> JuteWriter<'a> {
    /// Appends to `buf`.
    pub fn new(buf: &'a mut BytesMut) -> Self {
        JuteWriter { buf }
    }

    /// Writes an `int`.
    pub fn int(&mut self, v: i32) -> &mut Self {
        self.buf.put_i32(v);
        self
    }

    /// Writes a `long`.
    pub fn long(&mut self, v: i64) -> &mut Self {
        self.buf.put_i64(v);
        self
    }

    /// Writes a `boolean`.
    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.buf.put_u8(v as u8);
        self
    }

    /// Writes a `buffer`; `None` writes the null buffer (-1).
    pub fn buffer(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.buf.put_i32(-1),
            Some(bytes) => {
                self.buf.put_i32(len_i32(bytes.len()));
                self.buf.put_slice(bytes);
            }
        }
        self
    }

    /// Writes a `ustring`.
    pub fn ustring(&mut self, v: &str) -> &mut Self {
        self.buffer(Some(v.as_bytes()))
    }

    /// Writes a vector count.
    pub fn count(&mut self, n: usize) -> &mut Self {
        self.buf.put_i32(len_i32(n));
        self
    }

    /// Writes the null vector.
    pub fn count_null(&mut self) -> &mut Self {
        self.buf.put_i32(-1);
        self
    }

    /// Writes a `vector<ustring>`.
    pub fn strings<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Self {
        self.count(items.len());
        for item in items {
            self.ustring(item.as_ref());
        }
        self
    }
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("jute lengths fit in an i32: frames are bounded by jute.maxbuffer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut buf = BytesMut::new();
        JuteWriter::new(&mut buf).int(-7).long(1 << 40).boolean(true).buffer(None).buffer(Some(b"xy")).ustring("/a").strings(&["b", "c"]);
        let mut r = JuteReader::new(buf.freeze());
        assert_eq!(r.int().unwrap(), -7);
        assert_eq!(r.long().unwrap(), 1 << 40);
        assert!(r.boolean().unwrap());
        assert_eq!(r.buffer().unwrap(), None);
        assert_eq!(r.buffer().unwrap().unwrap(), Bytes::from_static(b"xy"));
        assert_eq!(r.ustring().unwrap(), "/a");
        assert_eq!(r.strings().unwrap(), vec!["b", "c"]);
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.int(), Err(DecodeError::Truncated));
    }

    #[test]
    fn hostile_lengths_are_rejected() {
        let mut buf = BytesMut::new();
        JuteWriter::new(&mut buf).int(i32::MAX);
        assert_eq!(JuteReader::new(buf.clone().freeze()).buffer(), Err(DecodeError::BadLength(i32::MAX)));
        let mut buf = BytesMut::new();
        JuteWriter::new(&mut buf).int(-2).int(-1).buffer(None).buffer(Some(&[0xff, b'a']));
        let mut r = JuteReader::new(buf.freeze());
        assert_eq!(r.strings(), Ok(vec![]), "a count below -1 is an empty vector");
        assert_eq!(r.strings(), Err(DecodeError::Null));
        assert_eq!(r.ustring(), Err(DecodeError::Null));
        assert_eq!(r.ustring().unwrap(), "\u{fffd}a");
    }
}
