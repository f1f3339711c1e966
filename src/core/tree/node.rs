//! One znode: its data, ACL, kind, the persisted parts of its Stat, and its
//! children's names.

use crate::core::txn::NodeKind;
use crate::proto::records::{Acl, Stat};
use bytes::Bytes;
use rkyv::{Archive, Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A znode as the tree stores it.
#[derive(Debug, Clone)]
pub struct Node {
    /// `None` is ZooKeeper's null data, distinct from empty data.
    pub data: Option<Bytes>,
    /// Shared with every node holding an equal ACL (see `AclCache`).
    pub acl: Arc<Vec<Acl>>,
    pub kind: NodeKind,
    pub persisted: PersistedStat,
    /// Child names, sorted, so listings are deterministic.
    pub children: BTreeSet<Box<str>>,
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
    pub fn new(data: Option<Bytes>, acl: Arc<Vec<Acl>>, kind: NodeKind, zxid: i64, time_ms: i64) -> Node {
        Node {
            data,
            acl,
            kind,
            persisted: PersistedStat { czxid: zxid, mzxid: zxid, pzxid: zxid, ctime: time_ms, mtime: time_ms, version: 0, child_creates: 0, aversion: 0 },
            children: BTreeSet::new(),
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
