//! One znode: its data, ACL, kind, the persisted parts of its Stat, and its
//! children.
//!
//! A node is immutable once it is in a tree: a change makes a new node and
//! puts it in place of the old one. So every core's tree can hold the same
//! nodes, and the only per-core cost of a node is its map slot.
//!
//! A node is one allocation: a reference count, its fixed fields, its path,
//! its owner session or TTL (ephemeral and TTL nodes only: 8 bytes), and
//! (up to [`INLINE_DATA_MAX`] bytes) its data, behind a thin pointer.
//! Keeping the kind's value out of the fixed fields saves 16 bytes on every
//! persistent node (PERF.md).
//! Larger data lives in a shared buffer of its own, so that the copy a
//! change makes (a parent gaining a child, say) copies at most the path and
//! a small value, never a large one.

use crate::core::path;
use crate::core::txn::NodeKind;
use crate::proto::records::{Acl, Stat};
use bytes::Bytes;
use rkyv::{Archive, Deserialize, Serialize};
use smol_str::SmolStr;
use std::sync::Arc;
use triomphe::ThinArc;

/// Data up to this many bytes is stored inside the node; larger data in a
/// buffer the node's versions share.
pub const INLINE_DATA_MAX: usize = 1024;

/// A znode as the tree stores it. Cloning shares it; its fields are read
/// through `Deref` to [`NodeFields`].
#[derive(Clone)]
pub struct Node(ThinArc<NodeFields, u8>);

/// A node's fixed-size fields. The bytes after them hold the path, then
/// the kind's value (see [`KindTag`]), then the data when it is inline.
#[derive(Debug, Clone)]
pub struct NodeFields {
    /// Shared with every node holding an equal ACL (see `AclCache`).
    pub acl: Arc<Vec<Acl>>,
    kind: KindTag,
    pub persisted: PersistedStat,
    pub children: Children,
    path_len: u32,
    /// `true` for ZooKeeper's null data, distinct from empty data.
    data_null: bool,
    /// Data larger than [`INLINE_DATA_MAX`] (so never null data).
    large_data: Option<ThinArc<(), u8>>,
}

/// A node's kind without its value. The owner session of an ephemeral
/// node and the TTL of a TTL node follow the path in the node's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KindTag {
    Persistent,
    Ephemeral,
    Container,
    Ttl,
}

/// Bytes a tagged kind's value takes after the path.
const KIND_VALUE_LEN: usize = std::mem::size_of::<i64>();

impl KindTag {
    /// The tag and the value stored after the path, if any.
    fn split(kind: NodeKind) -> (KindTag, Option<i64>) {
        match kind {
            NodeKind::Persistent => (KindTag::Persistent, None),
            NodeKind::Container => (KindTag::Container, None),
            NodeKind::Ephemeral { session_id } => (KindTag::Ephemeral, Some(session_id)),
            NodeKind::Ttl { ttl_ms } => (KindTag::Ttl, Some(ttl_ms)),
        }
    }

    /// Bytes of value this tag stores after the path.
    fn value_len(self) -> usize {
        match self {
            KindTag::Persistent | KindTag::Container => 0,
            KindTag::Ephemeral | KindTag::Ttl => KIND_VALUE_LEN,
        }
    }
}

impl Node {
    /// A node created by the transaction `zxid` at `time_ms`.
    pub fn new(path: &str, data: Option<&[u8]>, acl: Arc<Vec<Acl>>, kind: NodeKind, zxid: i64, time_ms: i64) -> Node {
        let persisted = PersistedStat { czxid: zxid, mzxid: zxid, pzxid: zxid, ctime: time_ms, mtime: time_ms, version: 0, child_creates: 0, aversion: 0 };
        Node::restored(path, data, acl, kind, persisted)
    }

    /// A node as a snapshot stores it: everything but its children.
    pub fn restored(path: &str, data: Option<&[u8]>, acl: Arc<Vec<Acl>>, kind: NodeKind, persisted: PersistedStat) -> Node {
        let fields = NodeFields { acl, kind: KindTag::Persistent, persisted, children: Children::default(), path_len: 0, data_null: true, large_data: None };
        Node::assemble(fields, path, kind, data)
    }

    /// Builds the allocation: `fields` with `path`, `kind` and `data` placed.
    fn assemble(mut fields: NodeFields, path: &str, kind: NodeKind, data: Option<&[u8]>) -> Node {
        debug_assert!(path.starts_with('/'), "a node's path is absolute: {path:?}");
        fields.path_len = u32::try_from(path.len()).expect("paths are far shorter than 4 GiB");
        let (tag, value) = KindTag::split(kind);
        fields.kind = tag;
        fields.data_null = data.is_none();
        let data = data.unwrap_or_default();
        let large = data.len() > INLINE_DATA_MAX;
        fields.large_data = large.then(|| ThinArc::from_header_and_slice((), data));
        let inline = if large { &[][..] } else { data };
        if value.is_none() && inline.is_empty() {
            return Node(ThinArc::from_header_and_slice(fields, path.as_bytes()));
        }
        // The parts side by side in a reused buffer: a few copies, not a byte-by-byte fill.
        thread_local!(static JOINED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) });
        JOINED.with_borrow_mut(|joined| {
            joined.clear();
            joined.extend_from_slice(path.as_bytes());
            if let Some(value) = value {
                joined.extend_from_slice(&value.to_ne_bytes());
            }
            joined.extend_from_slice(inline);
            Node(ThinArc::from_header_and_slice(fields, joined))
        })
    }

    /// A copy with `edit` applied to its fields; path, kind and data unchanged.
    pub fn edited(&self, edit: impl FnOnce(&mut NodeFields)) -> Node {
        let mut fields = self.fields().clone();
        edit(&mut fields);
        Node(ThinArc::from_header_and_slice(fields, self.bytes()))
    }

    /// A copy holding `data`, with `edit` applied to its fields.
    pub fn with_data(&self, data: Option<&[u8]>, edit: impl FnOnce(&mut NodeFields)) -> Node {
        let mut fields = self.fields().clone();
        edit(&mut fields);
        Node::assemble(fields, self.path(), self.kind(), data)
    }

    /// Applies `edit` in place to a node no other owner shares yet (while
    /// restoring a tree); false, and nothing changed, if it is shared.
    pub(super) fn edit_unshared(&mut self, edit: impl FnOnce(&mut NodeFields)) -> bool {
        self.0.with_arc_mut(|arc| triomphe::Arc::get_mut(arc).map(|inner| edit(inner.header_mut())).is_some())
    }

    fn fields(&self) -> &NodeFields {
        &self.0.header.header
    }

    /// The path, then the data when it is inline.
    fn bytes(&self) -> &[u8] {
        &self.0.slice
    }

    /// Where the node is: the key of every core's map.
    pub fn path(&self) -> &str {
        let bytes = &self.bytes()[..self.fields().path_len as usize];
        // SAFETY: the path bytes were copied from a `&str` in `assemble` and never change.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// How the node lives and dies.
    pub fn kind(&self) -> NodeKind {
        let fields = self.fields();
        let value = || {
            let at = fields.path_len as usize;
            let bytes = self.bytes()[at..at + KIND_VALUE_LEN].try_into().expect("a tagged kind stores its value after the path");
            i64::from_ne_bytes(bytes)
        };
        match fields.kind {
            KindTag::Persistent => NodeKind::Persistent,
            KindTag::Container => NodeKind::Container,
            KindTag::Ephemeral => NodeKind::Ephemeral { session_id: value() },
            KindTag::Ttl => NodeKind::Ttl { ttl_ms: value() },
        }
    }

    /// The data; `None` is ZooKeeper's null data.
    pub fn data(&self) -> Option<&[u8]> {
        let fields = self.fields();
        if fields.data_null {
            return None;
        }
        Some(match &fields.large_data {
            Some(large) => &large.slice,
            None => &self.bytes()[fields.path_len as usize + fields.kind.value_len()..],
        })
    }

    /// The data as `Bytes` for a reply: a copy when small, shared when large.
    pub fn data_bytes(&self) -> Option<Bytes> {
        match &self.fields().large_data {
            Some(large) => Some(Bytes::from_owner(SharedData(large.clone()))),
            None => self.data().map(Bytes::copy_from_slice),
        }
    }

    /// Bytes of data held (0 for null).
    pub fn data_len(&self) -> usize {
        self.data().map_or(0, <[u8]>::len)
    }

    /// The Stat a client sees (ZooKeeper's `DataNode.copyStat`).
    pub fn stat(&self) -> Stat {
        let num_children = self.children.len() as i32;
        let p = &self.persisted;
        Stat {
            czxid: p.czxid,
            mzxid: p.mzxid,
            ctime: p.ctime,
            mtime: p.mtime,
            version: p.version,
            cversion: p.child_creates.wrapping_mul(2).wrapping_sub(num_children),
            aversion: p.aversion,
            ephemeral_owner: self.kind().ephemeral_owner(),
            data_length: self.data_len() as i32,
            num_children,
            pzxid: p.pzxid,
        }
    }
}

impl std::ops::Deref for Node {
    type Target = NodeFields;

    fn deref(&self) -> &NodeFields {
        self.fields()
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("path", &self.path())
            .field("kind", &self.kind())
            .field("data_len", &self.data().map(<[u8]>::len))
            .field("fields", &**self)
            .finish()
    }
}

/// A large data buffer lent to a reply without copying.
struct SharedData(ThinArc<(), u8>);

impl AsRef<[u8]> for SharedData {
    fn as_ref(&self) -> &[u8] {
        &self.0.slice
    }
}

/// A node's children, held by name in name order, so listings are
/// deterministic. A persistent set: a copy of a node shares it, and
/// changing the copy copies only O(log n) of it, so a node with a million
/// children costs no more to change than one with ten. Names of up to 23
/// bytes (most are) are stored in the set itself. A leaf (most nodes) holds
/// no set at all: one null pointer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Children(Option<Box<imbl::OrdSet<SmolStr>>>);

impl Children {
    /// Number of children.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |set| set.len())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The children's names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().flat_map(|set| set.iter()).map(SmolStr::as_str)
    }

    /// The children's full paths under `parent`, in order.
    pub fn paths<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = String> + 'a {
        self.names().map(move |name| path::join(parent, name))
    }

    /// Adds a child by name; false if it was already there.
    pub(super) fn insert(&mut self, name: &str) -> bool {
        self.0.get_or_insert_default().insert(SmolStr::new(name)).is_none()
    }

    /// Removes a child by name; false if it was not there.
    pub(super) fn remove(&mut self, name: &str) -> bool {
        let Some(set) = &mut self.0 else {
            return false;
        };
        let removed = set.remove(name).is_some();
        if set.is_empty() {
            self.0 = None;
        }
        removed
    }
}

impl<'a> FromIterator<&'a str> for Children {
    fn from_iter<I: IntoIterator<Item = &'a str>>(names: I) -> Children {
        let set: imbl::OrdSet<SmolStr> = names.into_iter().map(SmolStr::new).collect();
        Children((!set.is_empty()).then(|| Box::new(set)))
    }
}

/// The parts of a node's Stat that are stored rather than derived
/// (ZooKeeper's `StatPersisted`): the tree, snapshots and `snapshot dump`
/// all carry this one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Archive, Serialize, Deserialize)]
pub struct PersistedStat {
    pub czxid: i64,
    pub mzxid: i64,
    /// zxid of the last create or delete of a child.
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// Children ever created under this node: the next sequential suffix.
    /// The client sees `2 * creates - live children` (creates plus deletes).
    pub child_creates: i32,
    pub aversion: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tree::open_acl;

    #[test]
    fn path_kind_and_data_survive_every_kind_of_copy() {
        let large = vec![7u8; INLINE_DATA_MAX + 1];
        let kinds =
            [NodeKind::Persistent, NodeKind::Container, NodeKind::Ephemeral { session_id: -0x7f00_0000_0000_0001 }, NodeKind::Ttl { ttl_ms: 86_400_000 }];
        for kind in kinds {
            for data in [None, Some(&b""[..]), Some(&b"small"[..]), Some(&large[..])] {
                let n = Node::new("/a/b", data, Arc::new(open_acl()), kind, 5, 9);
                assert_eq!((n.path(), n.kind(), n.data(), n.data_bytes().as_deref()), ("/a/b", kind, data, data));
                assert_eq!(n.stat().ephemeral_owner, kind.ephemeral_owner());
                let edited = n.edited(|f| f.persisted.version = 3);
                assert_eq!((edited.path(), edited.kind(), edited.data(), edited.persisted.version), ("/a/b", kind, data, 3));
                assert_eq!(n.persisted.version, 0, "the original is unchanged");
                let swapped = n.with_data(Some(b"new"), |_| {});
                assert_eq!((swapped.path(), swapped.kind(), swapped.data(), swapped.stat().data_length), ("/a/b", kind, Some(&b"new"[..]), 3));
                let grown = swapped.with_data(Some(&large), |_| {});
                assert_eq!((grown.kind(), grown.data(), swapped.data()), (kind, Some(&large[..]), Some(&b"new"[..])));
            }
        }
    }

    #[test]
    fn fixed_fields_stay_small() {
        // Every node pays for these (PERF.md, memory): 16 bytes more here is
        // 16 MB more at a million nodes.
        assert!(std::mem::size_of::<NodeFields>() <= 88, "{}", std::mem::size_of::<NodeFields>());
    }

    #[test]
    fn children_are_names_in_order_and_paths_are_joined() {
        let mut kids: Children = ["b", "a"].into_iter().collect();
        assert!(kids.insert("c"));
        assert!(!kids.insert("a"));
        assert!(kids.remove("b"));
        assert!(!kids.remove("b"));
        assert_eq!(kids.names().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(kids.len(), 2);
        assert_eq!(kids.paths("/").collect::<Vec<_>>(), ["/a", "/c"]);
        assert_eq!(kids.paths("/p").collect::<Vec<_>>(), ["/p/a", "/p/c"]);
        assert!(kids.remove("a") && kids.remove("c"));
        assert!(kids.is_empty() && kids == Children::default(), "an emptied set is a leaf's again");
        assert_eq!(kids.names().count(), 0);
    }
}
