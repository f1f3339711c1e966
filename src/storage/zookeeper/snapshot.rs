//! ZooKeeper's snapshot files (`FileSnap`, `SnapStream`,
//! `SerializeUtils.serializeSnapshot`, `DataTree.serialize`).
//!
//! ```text
//! file     = header sessions acls node* "/" seal [digest seal] [lastZxid seal]
//! header   = int magic "ZKSN" | int version 2 | long dbid
//! sessions = int count, count × (long id, int timeout ms)
//! acls     = int count, count × (long id, vector<ACL>)
//! node     = ustring path ("" for the root) | buffer data | long acl id
//!            (-1: world:anyone, all permissions) | StatPersisted
//! seal     = long Adler-32 of every byte before it | ustring "/"
//! digest   = long zxid | int version | long digest          (3.6+)
//! lastZxid = long zxid                                      (3.9+)
//! ```
//! All big-endian. `snapshot.<zxid>.gz` is gzip, `.snappy` snappy-java's
//! stream format; checksums cover the uncompressed bytes. The file's zxid
//! is the one in its name.

use super::ZkError;
use super::model::{SnapNode, StatPersisted};
use crate::proto::jute::{DecodeError, JuteReader};
use crate::proto::records::Acl;
use bytes::Bytes;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

const MAGIC: i32 = 0x5A4B_534E;
const SNAPPY_MAGIC: &[u8; 8] = b"\x82SNAPPY\0";
const SNAPPY_HEADER_LEN: usize = 16;
/// What a plain snapshot ends with: the seal's ustring "/".
const PLAIN_TAIL: &[u8; 5] = b"\0\0\0\x01/";

/// A snapshot file found in a directory.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub path: PathBuf,
    pub zxid: i64,
}

/// A snapshot as read.
pub struct Snapshot {
    pub path: PathBuf,
    pub zxid: i64,
    pub sessions: Vec<(i64, i32)>,
    pub acls: HashMap<i64, Vec<Acl>>,
    pub nodes: Vec<SnapNode>,
}

/// `snapshot.<hex zxid>[.ext]` files in `dir`, newest first.
pub fn candidates(dir: &Path) -> Result<Vec<Candidate>, ZkError> {
    let mut found = super::named(dir, "snapshot")?.into_iter().map(|(path, zxid)| Candidate { path, zxid }).collect::<Vec<_>>();
    found.sort_by_key(|c| std::cmp::Reverse(c.zxid));
    Ok(found)
}

/// Reads and checks one snapshot file.
pub fn read(candidate: &Candidate) -> Result<Snapshot, ZkError> {
    let path = &candidate.path;
    let raw = std::fs::read(path).map_err(|e| ZkError::file(path, format!("cannot read: {e}")))?;
    let bytes = Bytes::from(decompress(path, raw)?);
    if !path.extension().is_some_and(|e| e == "gz" || e == "snappy") && (bytes.len() < 10 || !bytes.ends_with(PLAIN_TAIL)) {
        return Err(ZkError::file(path, "not a complete snapshot (it does not end with the checksum's \"/\")"));
    }
    let (sessions, acls, nodes) = parse(path, &bytes)?;
    Ok(Snapshot { path: path.clone(), zxid: candidate.zxid, sessions, acls, nodes })
}

type Parsed = (Vec<(i64, i32)>, HashMap<i64, Vec<Acl>>, Vec<SnapNode>);

/// Parses the uncompressed bytes of a snapshot.
fn parse(path: &Path, bytes: &Bytes) -> Result<Parsed, ZkError> {
    let total = bytes.len();
    let mut r = JuteReader::new(bytes.clone());
    let offset = |r: &JuteReader| (total - r.remaining()) as u64;
    let bad = |r: &JuteReader, e: DecodeError| ZkError::at(path, offset(r), e.to_string());
    let magic = r.int().map_err(|e| bad(&r, e))?;
    if magic != MAGIC {
        return Err(ZkError::at(path, 0, format!("not a ZooKeeper snapshot (magic {magic:#x}, expected {MAGIC:#x} \"ZKSN\")")));
    }
    r.int().and_then(|_| r.long()).map_err(|e| bad(&r, e))?;
    let session_count = non_negative(&mut r).map_err(|e| bad(&r, e))?;
    let mut sessions = Vec::with_capacity(session_count.min(1 << 16));
    for _ in 0..session_count {
        let id = r.long().map_err(|e| bad(&r, e))?;
        sessions.push((id, r.int().map_err(|e| bad(&r, e))?));
    }
    let acl_count = non_negative(&mut r).map_err(|e| bad(&r, e))?;
    let mut acls = HashMap::with_capacity(acl_count.min(1 << 16));
    for _ in 0..acl_count {
        let id = r.long().map_err(|e| bad(&r, e))?;
        let at = offset(&r);
        let Some(n) = r.count().map_err(|e| bad(&r, e))? else {
            return Err(ZkError::at(path, at, format!("ACL {id} is a null list")));
        };
        let mut list = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            list.push(Acl::read(&mut r).map_err(|e| bad(&r, e))?);
        }
        acls.insert(id, list);
    }
    let mut nodes = Vec::new();
    loop {
        let at = offset(&r);
        let path_text = r.ustring().map_err(|e| bad(&r, e))?;
        if path_text == "/" {
            break;
        }
        let data = r.buffer().map_err(|e| bad(&r, e))?;
        let acl = r.long().map_err(|e| bad(&r, e))?;
        let stat = StatPersisted::read(&mut r).map_err(|e| bad(&r, e))?;
        let node_path = if path_text.is_empty() { "/".to_string() } else { path_text };
        if !node_path.starts_with('/') {
            return Err(ZkError::at(path, at, format!("node path {node_path:?} is not absolute")));
        }
        nodes.push(SnapNode { path: node_path, data, acl, stat });
    }
    check_seal(path, bytes, &mut r)?;
    // 3.6+ adds a digest section and 3.9 the last zxid, each sealed:
    // 33 and 21 bytes, both or either, told apart by what is left.
    if matches!(r.remaining(), 33 | 54) {
        r.long().and_then(|_| r.int()).and_then(|_| r.long()).map_err(|e| bad(&r, e))?;
        check_seal(path, bytes, &mut r)?;
    }
    if r.remaining() == 21 {
        r.long().map_err(|e| bad(&r, e))?;
        check_seal(path, bytes, &mut r)?;
    }
    if r.remaining() != 0 {
        return Err(ZkError::at(path, offset(&r), format!("{} unexpected bytes after the last checksum", r.remaining())));
    }
    Ok((sessions, acls, nodes))
}

/// An `int` count that must not be negative.
fn non_negative(r: &mut JuteReader) -> Result<usize, DecodeError> {
    let n = r.int()?;
    usize::try_from(n).map_err(|_| DecodeError::BadLength(n))
}

/// A seal: the Adler-32 of every byte before it, then the string "/".
fn check_seal(path: &Path, bytes: &[u8], r: &mut JuteReader) -> Result<(), ZkError> {
    let at = bytes.len() - r.remaining();
    let expected = adler32(&bytes[..at]);
    let stored = r.long().map_err(|e| ZkError::at(path, at as u64, e.to_string()))?;
    if stored != expected as i64 {
        return Err(ZkError::at(path, at as u64, format!("checksum mismatch (stored {stored:#x}, computed {expected:#x})")));
    }
    match r.ustring() {
        Ok(s) if s == "/" => Ok(()),
        _ => Err(ZkError::at(path, at as u64 + 8, "the checksum is not followed by \"/\"")),
    }
}

/// Java's `java.util.zip.Adler32`.
pub fn adler32(bytes: &[u8]) -> u32 {
    let mut a = adler2::Adler32::new();
    a.write_slice(bytes);
    a.checksum()
}

/// The uncompressed bytes of a snapshot, by its name's extension.
fn decompress(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, ZkError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(|e| ZkError::file(path, format!("not valid gzip: {e}")))?;
            Ok(out)
        }
        Some("snappy") => snappy_java(path, &raw),
        _ => Ok(raw),
    }
}

/// snappy-java's stream format: a 16-byte header (magic, version,
/// compatible version), then blocks of (int length, raw snappy block); a
/// concatenated stream repeats the header.
fn snappy_java(path: &Path, raw: &[u8]) -> Result<Vec<u8>, ZkError> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut decoder = snap::raw::Decoder::new();
    while at < raw.len() {
        if raw[at..].starts_with(SNAPPY_MAGIC) {
            at += SNAPPY_HEADER_LEN;
            continue;
        }
        if at == 0 {
            return Err(ZkError::at(path, 0, "not a snappy-java stream (no magic)"));
        }
        let len = raw
            .get(at..at + 4)
            .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| ZkError::at(path, at as u64, "truncated block length"))?;
        let block = usize::try_from(len)
            .ok()
            .and_then(|len| raw.get(at + 4..at + 4 + len))
            .ok_or_else(|| ZkError::at(path, at as u64, format!("bad block length {len}")))?;
        let plain = decoder.decompress_vec(block).map_err(|e| ZkError::at(path, at as u64, format!("bad snappy block: {e}")))?;
        out.extend_from_slice(&plain);
        at += 4 + block.len();
    }
    Ok(out)
}
