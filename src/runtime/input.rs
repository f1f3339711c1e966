//! A socket's input buffer: bytes read and not yet consumed, then a zeroed
//! tail that reads fill. The tail is zeroed when it is added, a chunk at a
//! time, not before every read: a closed-loop client sends one small
//! request per read, and zeroing a whole chunk each time cost more than
//! parsing the request.

use bytes::{Buf, Bytes, BytesMut};

/// Bytes read from a socket and not yet consumed.
pub struct Input {
    /// `filled` bytes of input, then zeroes up to `buf.len()`.
    buf: BytesMut,
    filled: usize,
    /// Bytes added to the tail when it runs short.
    chunk: usize,
}

impl Input {
    /// An empty input that reads up to `chunk` bytes at a time.
    pub fn new(chunk: usize) -> Input {
        assert!(chunk >= 4, "a chunk holds at least a length prefix");
        Input { buf: BytesMut::new(), filled: 0, chunk }
    }

    /// The input not yet consumed.
    pub fn filled(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// Where the next read goes: at least a quarter chunk.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.buf.len() - self.filled < self.chunk / 4 {
            self.buf.resize(self.filled + self.chunk, 0);
        }
        &mut self.buf[self.filled..]
    }

    /// `n` bytes were read into [`Input::spare`].
    pub fn fill(&mut self, n: usize) {
        assert!(self.filled + n <= self.buf.len(), "a read fills at most the spare room");
        self.filled += n;
    }

    /// Drops the first `n` bytes of input.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.filled, "consumes only what was read");
        self.buf.advance(n);
        self.filled -= n;
    }

    /// Takes the first `n` bytes of input, without copying them.
    pub fn take(&mut self, n: usize) -> Bytes {
        assert!(n <= self.filled, "takes only what was read");
        self.filled -= n;
        self.buf.split_to(n).freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_append_and_takes_and_consumes_come_from_the_front() {
        let mut input = Input::new(16);
        input.spare()[..5].copy_from_slice(b"hello");
        input.fill(5);
        assert_eq!(input.filled(), b"hello");
        input.consume(1);
        let spare = input.spare();
        assert!(spare.len() >= 4 && spare.iter().all(|&b| b == 0), "the tail is zeroed");
        spare[..3].copy_from_slice(b" yo");
        input.fill(3);
        assert_eq!(&input.take(4)[..], b"ello");
        assert_eq!(input.filled(), b" yo");
        // Many reads later the tail is topped up again.
        for _ in 0..20 {
            let spare = input.spare();
            spare[0] = b'.';
            input.fill(1);
        }
        assert_eq!(input.filled().len(), 23);
        assert_eq!(&input.filled()[..4], b" yo.");
    }
}
