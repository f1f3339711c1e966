//! One znode: its data, ACL, kind, the persisted parts of its Stat, and its
//! children.
//!
//! A node is immutable once it is in a tree: a change makes a new node (a
//! cheap copy: data, ACL and child set are shared) and puts it in place of
//! the old one. So every core's tree can hold the same `Arc<Node>`s, and the
//! only per-core cost of a node is its map slot.

use crate::core::txn::NodeKind;
use crate::proto::records::{Acl, Stat};
use bytes::Bytes;
use rkyv::{Archive, Deserialize, Serialize};
use std::sync::Arc;

/// A znode as the tree stores it.
#[derive(Debug, Clone)]
pub struct Node {
    /// Where the node is: the key of every core's map, shared with them.
    pub path: Arc<str>,
    /// `None` is ZooKeeper's null data, distinct from empty data.
    pub data: Option<Bytes>,
    /// Shared with every node holding an equal ACL (see `AclCache`).
    pub acl: Arc<Vec<Acl>>,
    pub kind: NodeKind,
    pub persisted: PersistedStat,
    pub children: Children,
}

/// A node's children, held as their full paths (the same allocations as the
/// children's own `path`) in path order, which for siblings is name order, so listings
/// are deterministic. A persistent set: a copy of a node shares it, and
/// changing the copy copies only O(log n) of it, so a node with a million
/// children costs no more to change than one with ten.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Children(imbl::OrdSet<Arc<str>>);

impl Children {
    /// Number of children.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The children's names (the last path component), in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|p| p.rsplit_once('/').map_or(&**p, |(_, name)| name))
    }

    /// The children's full paths, in order.
    pub fn paths(&self) -> impl Iterator<Item = &Arc<str>> {
        self.0.iter()
    }

    /// Adds a child by its full path; false if it was already there.
    pub(super) fn insert(&mut self, child: Arc<str>) -> bool {
        self.0.insert(child).is_none()
    }

    /// Removes a child by its full path; false if it was not there.
    pub(super) fn remove(&mut self, child: &str) -> bool {
        self.0.remove(child).is_some()
    }
}

impl FromIterator<Arc<str>> for Children {
    fn from_iter<I: IntoIterator<Item = Arc<str>>>(paths: I) -> Children {
        Children(paths.into_iter().collect())
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

impl Node {
    /// A node created by the transaction `zxid` at `time_ms`.
    pub fn new(path: Arc<str>, data: Option<Bytes>, acl: Arc<Vec<Acl>>, kind: NodeKind, zxid: i64, time_ms: i64) -> Node {
        Node {
            path,
            data,
            acl,
            kind,
            persisted: PersistedStat { czxid: zxid, mzxid: zxid, pzxid: zxid, ctime: time_ms, mtime: time_ms, version: 0, child_creates: 0, aversion: 0 },
            children: Children::default(),
        }
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
            ephemeral_owner: self.kind.ephemeral_owner(),
            data_length: self.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children,
            pzxid: p.pzxid,
        }
    }

    /// Bytes of data held (0 for null).
    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }
}
