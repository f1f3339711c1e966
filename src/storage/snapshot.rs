//! Snapshots: the whole tree and the live sessions at one zxid, in
//! `<dataDir>/keeper-v1/snapshot.<zxid, 16 hex digits>`.
//!
//! ```text
//! file    = header chunk* footer
//! header  = magic "KPRSNAP1" | zxid i64 LE                              ; 32 bytes
//!           raft index u64 LE | raft term u64 LE   ; the last entry applied
//!                                                  ; (zeros: written before replication)
//! chunk   = length u32 LE | crc32c u32 LE | reserved 8 bytes             ; 16 bytes
//!           payload (length bytes: an rkyv archive of a Chunk)
//!           zero padding to a multiple of 16
//! footer  = magic "KPRSNEND" | chunk count u64 LE | nodes u64 LE | crc32c of the header u32 | 4 zero bytes
//! ```
//! The first chunk is `Chunk::Meta` (sessions and the distinct ACL lists);
//! the rest are `Chunk::Nodes` of at most [`NODES_PER_CHUNK`] nodes each.
//! Chunks keep memory bounded while writing, and each is checked on its own.
//!
//! Loading maps the file and reads every chunk in place (rkyv, validated);
//! each node's data is copied into the node as the tree is rebuilt (a node
//! is one allocation), so the mapping is dropped once loading ends. A file
//! that fails any check is reported with its name and the offset of the bad
//! part.
//!
//! Writing goes to `snapshot.<zxid>.tmp`, is fsynced, renamed into place and
//! the directory fsynced, so a crash never leaves a half snapshot under the
//! final name.

use crate::core::consensus::LogPosition;
use crate::core::tree::{AclCache, DataTree, Node, PersistedStat};
use crate::core::txn::NodeKind;
use crate::core::zxid::Zxid;
use crate::proto::records::Acl;
use bytes::Bytes;
use memmap2::Mmap;
use rkyv::{Archive, Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"KPRSNAP1";
const FOOTER_MAGIC: &[u8; 8] = b"KPRSNEND";
const HEADER_LEN: usize = 32;
const CHUNK_HEADER_LEN: usize = 16;
const FOOTER_LEN: usize = 32;
const PREFIX: &str = "snapshot.";
/// Nodes per chunk: bounds the memory a snapshot write needs.
pub const NODES_PER_CHUNK: usize = 2 * 1024;

/// A node as archived.
#[derive(Archive, Serialize, Deserialize, Debug)]
struct SnapNode {
    path: String,
    data: Option<Bytes>,
    acl: u32,
    kind: NodeKind,
    persisted: PersistedStat,
}

/// One chunk of a snapshot.
#[derive(Archive, Serialize, Deserialize, Debug)]
enum Chunk {
    Meta { sessions: Vec<(i64, i32)>, acl_lists: Vec<Vec<Acl>> },
    Nodes(Vec<SnapNode>),
}

/// A snapshot file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    pub path: PathBuf,
    pub zxid: Zxid,
}

/// Snapshot files in `dir`, oldest first (temporary files excluded).
pub fn list(dir: &Path) -> io::Result<Vec<SnapshotFile>> {
    Ok(super::naming::list(dir, PREFIX)?.into_iter().map(|(path, zxid)| SnapshotFile { path, zxid: Zxid::from_raw(zxid as i64) }).collect())
}

/// Writes `tree`, which has applied the raft log up to `position`, as
/// `dir/snapshot.<zxid>`, durably. Returns the file.
pub fn write(tree: &DataTree, position: LogPosition, dir: &Path) -> io::Result<SnapshotFile> {
    let zxid = tree.last_zxid();
    let name = super::naming::name(PREFIX, zxid.raw() as u64);
    let path = dir.join(&name);
    let tmp = dir.join(format!("{name}.tmp"));
    let file = File::create(&tmp)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8..16].copy_from_slice(&zxid.raw().to_le_bytes());
    header[16..24].copy_from_slice(&position.index.to_le_bytes());
    header[24..32].copy_from_slice(&position.term.to_le_bytes());
    out.write_all(&header)?;

    let mut acl_index: HashMap<*const Vec<Acl>, u32> = HashMap::new();
    let mut acl_lists: Vec<Vec<Acl>> = Vec::new();
    for (_, node) in tree.paths() {
        acl_index.entry(Arc::as_ptr(&node.acl)).or_insert_with(|| {
            acl_lists.push(node.acl.to_vec());
            (acl_lists.len() - 1) as u32
        });
    }
    let sessions: Vec<(i64, i32)> = tree.sessions().iter().map(|(s, t)| (*s, *t)).collect();
    let mut chunks = 0u64;
    write_chunk(&mut out, &Chunk::Meta { sessions, acl_lists })?;
    chunks += 1;
    let mut batch = Vec::with_capacity(NODES_PER_CHUNK);
    let mut nodes = 0u64;
    // Nodes go out sorted by path: each parent's children then arrive in
    // name order, so loading builds every child set from a sorted run
    // (linear) instead of sorting a million names. The sort runs here, on
    // the snapshot thread, off every client's path.
    let mut sorted: Vec<(&str, &Node)> = tree.paths().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (p, n) in sorted {
        batch.push(SnapNode {
            path: p.to_string(),
            data: n.data().map(bytes::Bytes::copy_from_slice),
            acl: acl_index[&Arc::as_ptr(&n.acl)],
            kind: n.kind(),
            persisted: n.persisted,
        });
        nodes += 1;
        if batch.len() == NODES_PER_CHUNK {
            write_chunk(&mut out, &Chunk::Nodes(std::mem::take(&mut batch)))?;
            chunks += 1;
        }
    }
    if !batch.is_empty() {
        write_chunk(&mut out, &Chunk::Nodes(batch))?;
        chunks += 1;
    }
    let mut footer = [0u8; FOOTER_LEN];
    footer[..8].copy_from_slice(FOOTER_MAGIC);
    footer[8..16].copy_from_slice(&chunks.to_le_bytes());
    footer[16..24].copy_from_slice(&nodes.to_le_bytes());
    footer[24..28].copy_from_slice(&crc32c::crc32c(&header).to_le_bytes());
    out.write_all(&footer)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &path)?;
    super::segment::sync_dir(dir)?;
    Ok(SnapshotFile { path, zxid })
}

fn write_chunk(out: &mut impl Write, chunk: &Chunk) -> io::Result<()> {
    let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(chunk).map_err(io::Error::other)?;
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("snapshot chunk over 4 GiB"))?;
    let mut head = [0u8; CHUNK_HEADER_LEN];
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4..8].copy_from_slice(&crc32c::crc32c(&bytes).to_le_bytes());
    out.write_all(&head)?;
    out.write_all(&bytes)?;
    out.write_all(&[0u8; 16][..padding(bytes.len())])
}

fn padding(len: usize) -> usize {
    (16 - len % 16) % 16
}

/// Why a snapshot could not be loaded.
#[derive(Debug)]
pub struct SnapshotError {
    pub file: PathBuf,
    pub offset: usize,
    pub why: String,
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "snapshot {} is invalid at offset {}: {}", self.file.display(), self.offset, self.why)
    }
}

impl std::error::Error for SnapshotError {}

/// One node as a snapshot stores it (everything but its children), its
/// path and data borrowed from the mapped file.
pub struct StoredNode<'a> {
    pub path: &'a str,
    pub data: Option<&'a [u8]>,
    /// Index into the snapshot's ACL lists.
    pub acl: usize,
    pub kind: NodeKind,
    pub persisted: PersistedStat,
}

/// What a snapshot holds, visited chunk by chunk (for `load` and `keeper snapshot dump`).
pub trait SnapshotVisitor {
    /// The sessions and ACL lists (the first chunk).
    fn meta(&mut self, sessions: &[(i64, i32)], acl_lists: Vec<Vec<Acl>>);
    /// One node. An error (an ACL index out of range, say) stops the read.
    fn node(&mut self, node: StoredNode<'_>) -> Result<(), String>;
}

/// A visitor that only lets `read` check the file.
pub struct Validate;

impl SnapshotVisitor for Validate {
    fn meta(&mut self, _: &[(i64, i32)], _: Vec<Vec<Acl>>) {}
    fn node(&mut self, _: StoredNode<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// What a snapshot's header and footer say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub zxid: Zxid,
    /// The last raft entry the tree had applied ((0, 0) before replication).
    pub position: LogPosition,
    pub nodes: u64,
}

/// Maps, checks and visits a snapshot.
pub fn read(file: &SnapshotFile, visitor: &mut impl SnapshotVisitor) -> Result<SnapshotInfo, SnapshotError> {
    let err = |offset: usize, why: String| SnapshotError { file: file.path.clone(), offset, why };
    let f = File::open(&file.path).map_err(|e| err(0, format!("cannot open: {e}")))?;
    // SAFETY: snapshot files are immutable once renamed into place.
    let map = unsafe { Mmap::map(&f) }.map_err(|e| err(0, format!("cannot map: {e}")))?;
    let bytes: &[u8] = &map;
    if bytes.len() < HEADER_LEN + FOOTER_LEN || &bytes[..8] != MAGIC {
        return Err(err(0, "bad header".into()));
    }
    let zxid = Zxid::from_raw(i64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")));
    if zxid != file.zxid {
        return Err(err(8, format!("header zxid {zxid} does not match the file name")));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let position = LogPosition { index: u64_at(16), term: u64_at(24) };
    let footer_at = bytes.len() - FOOTER_LEN;
    let footer = &bytes[footer_at..];
    if &footer[..8] != FOOTER_MAGIC || footer[28..] != [0; 4] {
        return Err(err(footer_at, "missing footer (incomplete snapshot)".into()));
    }
    let chunks = u64::from_le_bytes(footer[8..16].try_into().expect("8 bytes"));
    let nodes = u64::from_le_bytes(footer[16..24].try_into().expect("8 bytes"));
    if u32::from_le_bytes(footer[24..28].try_into().expect("4 bytes")) != crc32c::crc32c(&bytes[..HEADER_LEN]) {
        return Err(err(0, "header checksum mismatch".into()));
    }
    let mut off = HEADER_LEN;
    let mut seen_nodes = 0u64;
    for index in 0..chunks {
        if off + CHUNK_HEADER_LEN > footer_at {
            return Err(err(off, format!("chunk {index} of {chunks} is missing")));
        }
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().expect("4 bytes"));
        let start = off + CHUNK_HEADER_LEN;
        if start + len > footer_at {
            return Err(err(off, format!("chunk {index} runs past the footer")));
        }
        let payload = &bytes[start..start + len];
        if crc32c::crc32c(payload) != crc {
            return Err(err(off, format!("chunk {index} checksum mismatch")));
        }
        let chunk = rkyv::access::<ArchivedChunk, rkyv::rancor::Error>(payload).map_err(|e| err(start, format!("chunk {index} does not validate: {e}")))?;
        match (index, chunk) {
            (0, ArchivedChunk::Meta { sessions, acl_lists }) => {
                let sessions: Vec<(i64, i32)> = sessions.iter().map(|s| (s.0.to_native(), s.1.to_native())).collect();
                let acl_lists = rkyv::deserialize::<Vec<Vec<Acl>>, rkyv::rancor::Error>(acl_lists).map_err(|e| err(start, format!("ACL lists: {e}")))?;
                visitor.meta(&sessions, acl_lists);
            }
            (i, ArchivedChunk::Nodes(list)) if i > 0 => {
                for n in list.iter() {
                    let kind = rkyv::deserialize::<NodeKind, rkyv::rancor::Error>(&n.kind).map_err(|e| err(start, format!("node kind: {e}")))?;
                    let persisted = rkyv::deserialize::<PersistedStat, rkyv::rancor::Error>(&n.persisted).map_err(|e| err(start, format!("node stat: {e}")))?;
                    let node =
                        StoredNode { path: n.path.as_str(), data: n.data.as_ref().map(|d| d.as_slice()), acl: n.acl.to_native() as usize, kind, persisted };
                    visitor.node(node).map_err(|why| err(start, why))?;
                    seen_nodes += 1;
                }
            }
            _ => return Err(err(off, format!("chunk {index} has the wrong kind"))),
        }
        off = start + len + padding(len);
    }
    if off != footer_at {
        return Err(err(off, "unexpected bytes before the footer".into()));
    }
    if seen_nodes != nodes {
        return Err(err(footer_at, format!("footer says {nodes} nodes, chunks hold {seen_nodes}")));
    }
    Ok(SnapshotInfo { zxid, position, nodes })
}

/// A node as `keeper snapshot dump` lists it: a copy of what the snapshot stores.
#[derive(Debug, Clone)]
pub struct CollectedNode {
    pub data: Option<Bytes>,
    /// Index into the snapshot's ACL lists.
    pub acl: usize,
    pub kind: NodeKind,
    pub persisted: PersistedStat,
}

/// Everything a snapshot holds, copied out (for `keeper snapshot dump`).
#[derive(Default)]
pub struct Collected {
    pub sessions: Vec<(i64, i32)>,
    pub acl_lists: Vec<Vec<Acl>>,
    pub nodes: Vec<(String, CollectedNode)>,
}

impl SnapshotVisitor for Collected {
    fn meta(&mut self, sessions: &[(i64, i32)], acl_lists: Vec<Vec<Acl>>) {
        self.sessions = sessions.to_vec();
        self.acl_lists = acl_lists;
    }

    fn node(&mut self, n: StoredNode<'_>) -> Result<(), String> {
        let node = CollectedNode { data: n.data.map(Bytes::copy_from_slice), acl: n.acl, kind: n.kind, persisted: n.persisted };
        self.nodes.push((n.path.to_string(), node));
        Ok(())
    }
}

/// Builds a tree's nodes straight from the mapped file: one allocation per
/// node, nothing in between to allocate and free again.
#[derive(Default)]
struct Loader {
    sessions: Vec<(i64, i32)>,
    acls: AclCache,
    /// The snapshot's ACL lists as interned in `acls`, by index.
    acl_lists: Vec<Arc<Vec<Acl>>>,
    nodes: Vec<Node>,
}

impl SnapshotVisitor for Loader {
    fn meta(&mut self, sessions: &[(i64, i32)], acl_lists: Vec<Vec<Acl>>) {
        self.sessions = sessions.to_vec();
        self.acl_lists = acl_lists.iter().map(|l| self.acls.intern(l)).collect();
    }

    fn node(&mut self, n: StoredNode<'_>) -> Result<(), String> {
        let acl = self.acl_lists.get(n.acl).cloned().ok_or_else(|| format!("node {} names ACL list {} of {}", n.path, n.acl, self.acl_lists.len()))?;
        self.nodes.push(Node::restored(n.path, n.data, acl, n.kind, n.persisted));
        Ok(())
    }
}

/// Loads a snapshot into a tree; also returns the raft position it is at.
pub fn load(file: &SnapshotFile) -> Result<(DataTree, LogPosition), SnapshotError> {
    let mut loader = Loader::default();
    let info = read(file, &mut loader)?;
    let Loader { sessions, acls, nodes, .. } = loader;
    let tree = DataTree::restore(info.zxid, sessions, acls, nodes).map_err(|why| SnapshotError { file: file.path.clone(), offset: 0, why })?;
    Ok((tree, info.position))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tree::open_acl;
    use crate::core::txn::{Txn, TxnBody, TxnOp};

    fn tree_with(n: usize) -> DataTree {
        let mut tree = DataTree::new();
        let mut zxid = Zxid::ZERO;
        let mut apply = |tree: &mut DataTree, body| {
            zxid = zxid.next();
            tree.apply(&Txn { zxid, time_ms: 7, session_id: 9, cxid: 0, body });
        };
        apply(&mut tree, TxnBody::CreateSession { timeout_ms: 5000 });
        apply(&mut tree, TxnBody::Single(TxnOp::Create { path: "/d".into(), data: None, acl: open_acl(), kind: NodeKind::Container }));
        for i in 0..n {
            let data = if i % 3 == 0 { None } else { Some(Bytes::from(format!("v{i}"))) };
            let kind = if i % 5 == 0 { NodeKind::Ephemeral { session_id: 9 } } else { NodeKind::Persistent };
            apply(&mut tree, TxnBody::Single(TxnOp::Create { path: format!("/d/n{i}"), data, acl: open_acl(), kind }));
        }
        tree
    }

    fn same(a: &DataTree, b: &DataTree) {
        assert_eq!(a.last_zxid(), b.last_zxid());
        assert_eq!(a.node_count(), b.node_count());
        assert_eq!(a.sessions(), b.sessions());
        assert_eq!(a.approximate_data_size(), b.approximate_data_size());
        assert_eq!(a.ephemeral_count(), b.ephemeral_count());
        for (p, n) in a.paths() {
            let m = b.get(p).unwrap_or_else(|| panic!("{p} missing"));
            assert_eq!((n.stat(), n.data(), &n.acl, n.kind(), &n.children), (m.stat(), m.data(), &m.acl, m.kind(), &m.children), "{p}");
        }
    }

    #[test]
    fn nodes_are_stored_by_path_and_any_order_restores_the_same_tree() {
        let dir = std::env::temp_dir().join(format!("keeper-snap-order-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut tree = tree_with(300);
        // Grandchildren interleave with their parents' siblings in path order.
        for (i, parent) in ["/d/n1", "/d/n12", "/d/n2", "/d/n299"].iter().enumerate() {
            for c in ["b", "a", "c"] {
                let create = TxnOp::Create { path: format!("{parent}/{c}"), data: None, acl: open_acl(), kind: NodeKind::Persistent };
                let zxid = tree.last_zxid().next();
                tree.apply(&Txn { zxid, time_ms: i as i64, session_id: 9, cxid: 0, body: TxnBody::Single(create) });
            }
        }
        let at = LogPosition { index: 77, term: 3 };
        let file = write(&tree, at, &dir).unwrap();
        let mut stored = Collected::default();
        read(&file, &mut stored).unwrap();
        assert!(stored.nodes.windows(2).all(|w| w[0].0 < w[1].0), "nodes are written sorted by path");
        let (loaded, position) = load(&file).unwrap();
        same(&tree, &loaded);
        assert_eq!(position, at, "the raft position comes back");
        // Snapshots written before nodes were sorted list them in map order.
        for shuffle in [|v: &mut Vec<Node>| v.reverse(), |v: &mut Vec<Node>| v.rotate_left(17)] {
            let mut loader = Loader::default();
            read(&file, &mut loader).unwrap();
            shuffle(&mut loader.nodes);
            let restored = DataTree::restore(tree.last_zxid(), loader.sessions, loader.acls, loader.nodes).unwrap();
            same(&tree, &restored);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_node_naming_a_missing_acl_list_stops_the_load() {
        let mut loader = Loader::default();
        loader.meta(&[], vec![open_acl()]);
        let stored = |acl| StoredNode {
            path: "/a",
            data: Some(b"x"),
            acl,
            kind: NodeKind::Persistent,
            persisted: PersistedStat { czxid: 1, mzxid: 1, pzxid: 1, ctime: 0, mtime: 0, version: 0, child_creates: 0, aversion: 0 },
        };
        assert!(loader.node(stored(0)).is_ok());
        assert_eq!(loader.node(stored(1)).unwrap_err(), "node /a names ACL list 1 of 1");
        assert_eq!(loader.nodes.len(), 1);
    }

    #[test]
    fn snapshot_round_trips_and_damage_is_reported() {
        let dir = std::env::temp_dir().join(format!("keeper-snap-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tree = tree_with(NODES_PER_CHUNK + 100);
        let file = write(&tree, LogPosition::default(), &dir).unwrap();
        assert_eq!(list(&dir).unwrap(), vec![file.clone()]);
        same(&tree, &load(&file).unwrap().0);
        let pristine = std::fs::read(&file.path).unwrap();
        for (at, expect) in [(pristine.len() / 2, "checksum mismatch"), (pristine.len() - 3, "footer"), (3, "bad header")] {
            let mut bytes = pristine.clone();
            bytes[at] ^= 0x40;
            std::fs::write(&file.path, &bytes).unwrap();
            let e = load(&file).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(expect) && e.contains("offset"), "{e}");
        }
        std::fs::write(&file.path, &pristine[..pristine.len() - 100]).unwrap();
        assert!(load(&file).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
