//! Framing: every message on a client connection is a 4-byte big-endian
//! length followed by that many bytes. This module splits an input buffer into
//! frames (bounded by jute.maxbuffer) and writes length-prefixed frames.
//!
//! The handshake (`ConnectRequest`/`ConnectResponse`) lives here too, since it
//! is the only frame that is not `header + body`.

use super::jute::{DecodeResult, JuteReader, JuteWriter};
use super::records::ReplyHeader;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// What the input buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameCheck {
    /// A whole frame of this many body bytes is buffered.
    Ready(usize),
    /// More bytes are needed.
    Incomplete,
    /// The length prefix is negative or above the limit: close the connection.
    TooLarge(i32),
}

/// Looks at the buffered input without consuming it (mini-redis's `Frame::check`).
pub fn check(input: &[u8], max_frame_bytes: usize) -> FrameCheck {
    if input.len() < 4 {
        return FrameCheck::Incomplete;
    }
    let len = i32::from_be_bytes([input[0], input[1], input[2], input[3]]);
    if len < 0 || len as usize > max_frame_bytes {
        return FrameCheck::TooLarge(len);
    }
    if input.len() < 4 + len as usize {
        return FrameCheck::Incomplete;
    }
    FrameCheck::Ready(len as usize)
}

/// Takes one checked frame's body out of the input buffer.
pub fn take(input: &mut BytesMut, body_len: usize) -> Bytes {
    debug_assert!(input.len() >= 4 + body_len, "take() after check() said Ready");
    input.advance(4);
    input.split_to(body_len).freeze()
}

/// Builds one outgoing frame: reserve the length, let the caller write the
/// record, then patch the length in.
pub fn write_frame(out: &mut BytesMut, body: impl FnOnce(&mut JuteWriter<'_>)) {
    let start = out.len();
    out.put_i32(0);
    body(&mut JuteWriter::new(out));
    let len = out.len() - start - 4;
    let len = i32::try_from(len).expect("replies are smaller than 2 GiB");
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Writes a reply frame: header, then whatever `body` writes (nothing on error).
pub fn write_reply(out: &mut BytesMut, header: ReplyHeader, body: impl FnOnce(&mut JuteWriter<'_>)) {
    write_frame(out, |w| {
        header.write(w);
        body(w);
    });
}

/// The first frame a client sends (`ConnectRequest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    /// Whether the client sent the trailing readOnly byte (3.4+ clients do);
    /// the response mirrors it.
    pub sent_read_only: bool,
    pub read_only: bool,
}

impl ConnectRequest {
    /// Reads the handshake; the trailing readOnly byte is optional.
    pub fn read(frame: Bytes) -> DecodeResult<ConnectRequest> {
        let mut r = JuteReader::new(frame);
        let protocol_version = r.int()?;
        let last_zxid_seen = r.long()?;
        let timeout_ms = r.int()?;
        let session_id = r.long()?;
        let passwd = r.buffer()?.unwrap_or_default();
        let sent_read_only = r.remaining() > 0;
        let read_only = sent_read_only && r.boolean()?;
        Ok(ConnectRequest { protocol_version, last_zxid_seen, timeout_ms, session_id, passwd, sent_read_only, read_only })
    }
}

/// The server's answer to the handshake (`ConnectResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: [u8; 16],
    /// The server is in read-only mode.
    pub read_only: bool,
}

impl ConnectResponse {
    /// The answer for an expired or unknown session, or a wrong password.
    pub const REJECTED: ConnectResponse = ConnectResponse { timeout_ms: 0, session_id: 0, passwd: [0; 16], read_only: false };

    /// Writes the frame; the readOnly byte only if the client sent one (37 vs 36 bytes).
    pub fn write(&self, out: &mut BytesMut, with_read_only: bool) {
        write_frame(out, |w| {
            w.int(0).int(self.timeout_ms).long(self.session_id).buffer(Some(&self.passwd));
            if with_read_only {
                w.boolean(self.read_only);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_handles_partial_oversized_and_ready_frames() {
        assert_eq!(check(&[0, 0], 100), FrameCheck::Incomplete);
        assert_eq!(check(&[0, 0, 0, 3, 1], 100), FrameCheck::Incomplete);
        assert_eq!(check(&[0, 0, 0, 1, 9], 100), FrameCheck::Ready(1));
        assert_eq!(check(&[0x7f, 0xff, 0xff, 0xff], 100), FrameCheck::TooLarge(i32::MAX));
        assert_eq!(check(&[0xff, 0xff, 0xff, 0xff], 100), FrameCheck::TooLarge(-1));
    }

    #[test]
    fn connect_response_is_36_or_37_bytes() {
        let mut out = BytesMut::new();
        ConnectResponse::REJECTED.write(&mut out, true);
        assert_eq!(out.len(), 4 + 37);
        out.clear();
        ConnectResponse::REJECTED.write(&mut out, false);
        assert_eq!(out.len(), 4 + 36);
    }

    #[test]
    fn connect_request_without_read_only_byte() {
        let mut buf = BytesMut::new();
        JuteWriter::new(&mut buf).int(0).long(5).int(30000).long(0).buffer(Some(&[0; 16]));
        let req = ConnectRequest::read(buf.freeze()).unwrap();
        assert!(!req.sent_read_only);
        assert_eq!(req.last_zxid_seen, 5);
        assert_eq!(req.timeout_ms, 30000);
    }
}
