//! Peer frames: how the servers of an ensemble talk on their peer port.
//!
//! ```text
//! frame   = length u32 LE        ; payload bytes, 1 ..= PEER_FRAME_BYTES_MAX
//!           crc32c u32 LE        ; over version, kind and payload
//!           version u16 LE       ; PEER_PROTOCOL_VERSION
//!           kind u16 LE          ; 0: hello, 1: message
//!           payload              ; rkyv: a Hello, or a PeerMessage
//! link    = hello frame* from the dialing server: the first frame is its
//!           Hello; then messages, one way (each server dials every other
//!           for what it sends, and reads what the others dial in with)
//! ```
//! A frame that is too long, fails its checksum, has another version or
//! kind, or does not validate closes its link; nothing in it is acted on.

use crate::core::messages::PeerMessage;
use rkyv::{Archive, Deserialize, Serialize};

/// The largest frame payload: a raft append of `MESSAGE_BYTES_MAX` of
/// entries, plus one entry that is bigger on its own (a 1 MiB write).
pub const PEER_FRAME_BYTES_MAX: usize = 16 << 20;
/// Bytes before a frame's payload.
pub const FRAME_HEADER_LEN: usize = 12;
/// The peer protocol this build speaks.
pub const PEER_PROTOCOL_VERSION: u16 = 2;

const KIND_HELLO: u16 = 0;
/// The kind of a frame that carries a [`PeerMessage`].
pub(crate) const KIND_MESSAGE: u16 = 1;

/// The first frame of a link: who dials, and which ensemble it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Archive, Serialize, Deserialize)]
pub struct Hello {
    pub server_id: u64,
    /// [`ensemble_identity`] of the dialing server's configuration.
    pub ensemble: u64,
}

/// A decoded frame.
#[derive(Debug, PartialEq)]
pub enum Frame {
    Hello(Hello),
    Message(PeerMessage),
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame(pub String);

/// A stable identity of an ensemble's membership (server ids and roles):
/// servers whose configurations list different members refuse each other.
/// Addresses are left out: they may legitimately differ between servers.
pub fn ensemble_identity(members: &[(u64, &str)]) -> u64 {
    use sha1::{Digest, Sha1};
    let mut sorted = members.to_vec();
    sorted.sort();
    let text: Vec<String> = sorted.iter().map(|(id, role)| format!("{id}:{role}")).collect();
    let digest = Sha1::digest(text.join(",").as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("a SHA-1 digest has 8 bytes"))
}

/// A frame of `kind` around `payload` (header, checksum and all).
pub(crate) fn encode(kind: u16, payload: &[u8]) -> Vec<u8> {
    assert!(!payload.is_empty() && payload.len() <= PEER_FRAME_BYTES_MAX, "a peer frame of {} bytes", payload.len());
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    let mut checked = Vec::with_capacity(4);
    checked.extend_from_slice(&PEER_PROTOCOL_VERSION.to_le_bytes());
    checked.extend_from_slice(&kind.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&checked), payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&checked);
    out.extend_from_slice(payload);
    out
}

/// A hello frame.
pub fn hello_frame(hello: &Hello) -> Vec<u8> {
    encode(KIND_HELLO, &rkyv::to_bytes::<rkyv::rancor::Error>(hello).expect("a hello serializes"))
}

/// A message frame.
pub fn message_frame(msg: &PeerMessage) -> Vec<u8> {
    encode(KIND_MESSAGE, &rkyv::to_bytes::<rkyv::rancor::Error>(msg).expect("a peer message serializes"))
}

/// The frame at the start of `buf` and its length, `None` if more bytes
/// are needed, or why it is refused.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, BadFrame> {
    if buf.len() < FRAME_HEADER_LEN {
        return Ok(None);
    }
    let len = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
    if len == 0 || len > PEER_FRAME_BYTES_MAX {
        return Err(BadFrame(format!("a frame length of {len} bytes (limit {PEER_FRAME_BYTES_MAX})")));
    }
    if buf.len() < FRAME_HEADER_LEN + len {
        return Ok(None);
    }
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    let version = u16::from_le_bytes(buf[8..10].try_into().expect("2 bytes"));
    let kind = u16::from_le_bytes(buf[10..12].try_into().expect("2 bytes"));
    let payload = &buf[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
    if crc != crc32c::crc32c_append(crc32c::crc32c(&buf[8..12]), payload) {
        return Err(BadFrame("checksum mismatch".into()));
    }
    if version != PEER_PROTOCOL_VERSION {
        return Err(BadFrame(format!("peer protocol version {version}, this server speaks {PEER_PROTOCOL_VERSION}")));
    }
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(len);
    aligned.extend_from_slice(payload);
    let bad = |e: rkyv::rancor::Error| BadFrame(format!("the payload does not validate: {e}"));
    let frame = match kind {
        KIND_HELLO => Frame::Hello(rkyv::from_bytes::<Hello, rkyv::rancor::Error>(&aligned).map_err(bad)?),
        KIND_MESSAGE => Frame::Message(rkyv::from_bytes::<PeerMessage, rkyv::rancor::Error>(&aligned).map_err(bad)?),
        other => return Err(BadFrame(format!("unknown frame kind {other}"))),
    };
    Ok(Some((frame, FRAME_HEADER_LEN + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_damage_is_refused() {
        let hello = Hello { server_id: 3, ensemble: ensemble_identity(&[(1, "participant"), (3, "observer")]) };
        let msg = PeerMessage::Touch(vec![1, 2, 3]);
        let mut stream = hello_frame(&hello);
        stream.extend(message_frame(&msg));
        let (first, used) = decode(&stream).unwrap().unwrap();
        assert_eq!(first, Frame::Hello(hello));
        let (second, rest) = decode(&stream[used..]).unwrap().unwrap();
        assert_eq!((second, used + rest), (Frame::Message(msg.clone()), stream.len()));
        assert_eq!(decode(&stream[..used - 1]).unwrap(), None, "a partial frame waits for more");
        let mut flipped = message_frame(&msg);
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(decode(&flipped).unwrap_err().0.contains("checksum"));
        let huge = ((PEER_FRAME_BYTES_MAX + 1) as u32).to_le_bytes();
        assert!(decode(&[&huge[..], &[0; 8]].concat()).unwrap_err().0.contains("limit"));
        let mut garbage = encode(KIND_MESSAGE, b"not an archived message at all");
        assert!(decode(&garbage).unwrap_err().0.contains("validate"));
        garbage = encode(7, b"x");
        assert!(decode(&garbage).unwrap_err().0.contains("kind 7"));
    }

    #[test]
    fn the_ensemble_identity_ignores_order_but_not_roles() {
        let a = ensemble_identity(&[(1, "participant"), (2, "participant"), (3, "participant")]);
        assert_eq!(a, ensemble_identity(&[(3, "participant"), (1, "participant"), (2, "participant")]));
        assert_ne!(a, ensemble_identity(&[(1, "participant"), (2, "participant"), (3, "observer")]));
        assert_ne!(a, ensemble_identity(&[(1, "participant"), (2, "participant"), (4, "participant")]));
    }
}
