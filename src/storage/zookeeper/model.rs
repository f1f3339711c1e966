//! The tree being imported, kept as ZooKeeper keeps it (`DataTree`: stat
//! fields as persisted, ACLs by id, ephemeral owners as numbers), so that
//! logged transactions apply exactly as `DataTree.processTxn` applies them,
//! then handed over as a keeper [`DataTree`].
//!
//! Replay is idempotent, as ZooKeeper's must be over a fuzzy snapshot:
//! transactions carry absolute values (the parent's new cversion, a node's
//! new version), a create of an existing node or a change to a missing one
//! changes nothing, and a parent's cversion and pzxid only move forward.

use super::snapshot::Snapshot;
use super::txn::{Header, Op, Txn};
use crate::core::path;
use crate::core::tree::{self, AclCache, DataTree, Node, PersistedStat};
use crate::core::txn::NodeKind;
use crate::core::zxid::Zxid;
use crate::proto::jute::{DecodeResult, JuteReader};
use crate::proto::records::Acl;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
pub const CONTAINER_OWNER: i64 = i64::MIN;

/// `StatPersisted`, in its field order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatPersisted {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

impl StatPersisted {
    /// Reads the record.
    pub fn read(r: &mut JuteReader) -> DecodeResult<StatPersisted> {
        Ok(StatPersisted {
            czxid: r.long()?,
            mzxid: r.long()?,
            ctime: r.long()?,
            mtime: r.long()?,
            version: r.int()?,
            cversion: r.int()?,
            aversion: r.int()?,
            ephemeral_owner: r.long()?,
            pzxid: r.long()?,
        })
    }
}

/// A node as a snapshot stores it.
#[derive(Debug, Clone)]
pub struct SnapNode {
    pub path: String,
    pub data: Option<Bytes>,
    /// An id in the snapshot's ACL map; -1 is world:anyone with every permission.
    pub acl: i64,
    pub stat: StatPersisted,
}

/// A node's ACL: an id into the snapshot's map until a transaction sets it.
#[derive(Debug, Clone)]
enum NodeAcl {
    Id(i64),
    List(Vec<Acl>),
}

#[derive(Debug, Clone)]
struct ZkNode {
    data: Option<Bytes>,
    acl: NodeAcl,
    stat: StatPersisted,
}

/// A ZooKeeper tree under replay.
pub struct ZkTree {
    nodes: BTreeMap<String, ZkNode>,
    acls: HashMap<i64, Vec<Acl>>,
    sessions: BTreeMap<i64, i32>,
    /// Ephemeral paths by owning session.
    ephemerals: HashMap<i64, BTreeSet<String>>,
    last_zxid: i64,
}

/// Whether an ephemeralOwner names a session (not persistent, container or TTL).
fn is_session(owner: i64) -> bool {
    owner != 0 && owner != CONTAINER_OWNER && (owner as u64) >> 56 != 0xFF
}

/// The keeper kind of an ephemeralOwner (`EphemeralType.get`, with
/// extended types on: a high byte of 0xFF is a TTL in its low 40 bits).
fn kind_of(owner: i64) -> Result<NodeKind, String> {
    let owner_bits = owner as u64;
    Ok(match owner {
        0 => NodeKind::Persistent,
        CONTAINER_OWNER => NodeKind::Container,
        _ if owner_bits >> 56 == 0xFF => match (owner_bits >> 40) & 0xFFFF {
            0 => NodeKind::Ttl { ttl_ms: (owner_bits & 0xFF_FFFF_FFFF) as i64 },
            other => return Err(format!("ephemeralOwner {owner:#x} has an unknown extended node type {other}")),
        },
        session_id => NodeKind::Ephemeral { session_id },
    })
}

/// Every path an op names must be valid.
fn check_paths(op: &Op) -> Result<(), String> {
    let check = |p: &str| path::validate(p).map_err(|e| format!("the transaction names an invalid path: {}", e.0));
    match op {
        Op::Create { path, .. } | Op::Delete { path } | Op::SetData { path, .. } | Op::SetAcl { path, .. } => check(path),
        Op::CloseSession { paths: Some(paths) } => paths.iter().try_for_each(|p| check(p)),
        Op::Multi(ops) => ops.iter().try_for_each(check_paths),
        Op::CreateSession { .. } | Op::CloseSession { paths: None } | Op::Nothing => Ok(()),
    }
}

fn parent_of(path: &str) -> Option<&str> {
    path::split(path).map(|(parent, _)| parent)
}

impl ZkTree {
    /// The tree a snapshot holds, at the zxid its name gives.
    pub fn from_snapshot(snap: Snapshot) -> Result<ZkTree, String> {
        let mut tree =
            ZkTree { nodes: BTreeMap::new(), acls: snap.acls, sessions: snap.sessions.into_iter().collect(), ephemerals: HashMap::new(), last_zxid: snap.zxid };
        for node in snap.nodes {
            path::validate(&node.path).map_err(|e| format!("a node's path is not valid: {}", e.0))?;
            if node.path != path::ROOT && parent_of(&node.path).is_none_or(|p| !tree.nodes.contains_key(p)) {
                return Err(format!("node {} comes before its parent (ZooKeeper calls this an invalid DataTree)", node.path));
            }
            tree.track(&node.path, node.stat.ephemeral_owner);
            tree.nodes.insert(node.path, ZkNode { data: node.data, acl: NodeAcl::Id(node.acl), stat: node.stat });
        }
        if !tree.nodes.contains_key(path::ROOT) {
            return Err("the snapshot has no root node".into());
        }
        Ok(tree)
    }

    /// The newest zxid applied.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Nodes, sessions.
    pub fn counts(&self) -> (usize, usize) {
        (self.nodes.len(), self.sessions.len())
    }

    fn track(&mut self, path: &str, owner: i64) {
        if is_session(owner) {
            self.ephemerals.entry(owner).or_default().insert(path.to_string());
        }
    }

    /// Applies one logged transaction (`FileTxnSnapLog.processTransaction`).
    /// A path no ZooKeeper server would have logged is an error.
    pub fn apply(&mut self, txn: &Txn) -> Result<(), String> {
        check_paths(&txn.op)?;
        self.apply_op(&txn.header, &txn.op);
        self.last_zxid = self.last_zxid.max(txn.header.zxid);
        Ok(())
    }

    fn apply_op(&mut self, h: &Header, op: &Op) {
        match op {
            Op::Create { path, data, acl, owner, parent_cversion, plain } => self.create(h, path, data, acl, *owner, *parent_cversion, *plain),
            Op::Delete { path } => self.delete(path, h.zxid),
            Op::SetData { path, data, version } => {
                if let Some(node) = self.nodes.get_mut(path) {
                    node.data = data.clone();
                    node.stat.version = *version;
                    node.stat.mzxid = h.zxid;
                    node.stat.mtime = h.time;
                }
            }
            Op::SetAcl { path, acl, version } => {
                if let Some(node) = self.nodes.get_mut(path) {
                    node.acl = NodeAcl::List(acl.clone());
                    node.stat.aversion = *version;
                }
            }
            Op::CreateSession { timeout_ms } => {
                self.sessions.insert(h.session, *timeout_ms);
            }
            Op::CloseSession { paths } => {
                self.sessions.remove(&h.session);
                let owned = self.ephemerals.remove(&h.session).unwrap_or_default();
                let doomed: Vec<String> = paths.clone().unwrap_or_else(|| owned.into_iter().collect());
                for p in doomed {
                    self.delete(&p, h.zxid);
                }
            }
            Op::Nothing => {}
            Op::Multi(ops) => ops.iter().for_each(|op| self.apply_op(h, op)),
        }
    }

    /// `DataTree.createNode`, and `setCversionPzxid` when a plain create
    /// finds the node there (a snapshot that already holds it).
    #[allow(clippy::too_many_arguments)]
    fn create(&mut self, h: &Header, path: &str, data: &Option<Bytes>, acl: &[Acl], owner: i64, parent_cversion: i32, plain: bool) {
        let exists = self.nodes.contains_key(path);
        if exists && !plain {
            return;
        }
        let Some(parent) = parent_of(path).and_then(|p| self.nodes.get_mut(p)) else { return };
        let new_cversion = if parent_cversion == -1 { parent.stat.cversion + 1 } else { parent_cversion };
        if new_cversion > parent.stat.cversion {
            parent.stat.cversion = new_cversion;
            parent.stat.pzxid = h.zxid;
        }
        if exists {
            return;
        }
        let stat = StatPersisted { czxid: h.zxid, mzxid: h.zxid, ctime: h.time, mtime: h.time, pzxid: h.zxid, ephemeral_owner: owner, ..Default::default() };
        self.track(path, owner);
        self.nodes.insert(path.to_string(), ZkNode { data: data.clone(), acl: NodeAcl::List(acl.to_vec()), stat });
    }

    /// `DataTree.deleteNode`: the parent's pzxid moves forward even when
    /// the node is already gone.
    fn delete(&mut self, path: &str, zxid: i64) {
        let Some(parent) = parent_of(path).and_then(|p| self.nodes.get_mut(p)) else { return };
        parent.stat.pzxid = parent.stat.pzxid.max(zxid);
        if let Some(node) = self.nodes.remove(path)
            && is_session(node.stat.ephemeral_owner)
            && let Some(set) = self.ephemerals.get_mut(&node.stat.ephemeral_owner)
        {
            set.remove(path);
        }
        // A deleted node has no children left (ZooKeeper deletes only
        // childless nodes); remove any stragglers of a fuzzy snapshot.
        let prefix = format!("{path}/");
        let stragglers: Vec<String> = self.nodes.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix)).map(|(p, _)| p.clone()).collect();
        for p in stragglers {
            self.nodes.remove(&p);
        }
    }

    /// What ZooKeeper does once replay ends (`ZooKeeperServer.loadData`,
    /// `DataTree.setupQuota`): the ephemerals of sessions that no longer
    /// exist are deleted, and each quota's usage is recounted.
    pub fn finish(&mut self) {
        let dead: Vec<i64> = self.ephemerals.keys().filter(|s| !self.sessions.contains_key(s)).copied().collect();
        for session in dead {
            for p in self.ephemerals.remove(&session).unwrap_or_default() {
                self.delete(&p, self.last_zxid);
            }
        }
        self.recount_quotas();
    }

    /// Sets each `zookeeper_stats` node to its subtree's real usage
    /// (nodes, the root included, and data bytes).
    fn recount_quotas(&mut self) {
        let quota_prefix = format!("{}/", tree::QUOTA_NODE);
        let stats: Vec<String> = self.nodes.keys().filter(|p| p.starts_with(&quota_prefix) && p.ends_with("/zookeeper_stats")).cloned().collect();
        for stats_path in stats {
            let root = &stats_path[tree::QUOTA_NODE.len()..stats_path.len() - "/zookeeper_stats".len()];
            let Some(root_node) = self.nodes.get(root) else { continue };
            let prefix = format!("{root}/");
            let below = self.nodes.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix)).map(|(_, n)| n);
            let (count, bytes) =
                std::iter::once(root_node).chain(below).fold((0i64, 0i64), |(c, b), n| (c + 1, b + n.data.as_ref().map_or(0, |d| d.len() as i64)));
            let node = self.nodes.get_mut(&stats_path).expect("listed above");
            node.data = Some(Bytes::from(format!("count={count},bytes={bytes}")));
        }
    }

    /// The keeper tree holding the same nodes, stats, ACLs and sessions.
    pub fn into_data_tree(self) -> Result<DataTree, String> {
        let mut cache = AclCache::default();
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for (path, node) in &self.nodes {
            let acl = match &node.acl {
                NodeAcl::List(list) => list.clone(),
                NodeAcl::Id(-1) => tree::open_acl(),
                NodeAcl::Id(id) => {
                    self.acls.get(id).cloned().ok_or_else(|| format!("node {path} refers to ACL {id}, which the snapshot's ACL map does not hold"))?
                }
            };
            let kind = kind_of(node.stat.ephemeral_owner).map_err(|e| format!("node {path}: {e}"))?;
            let s = node.stat;
            let persisted = PersistedStat {
                czxid: s.czxid,
                mzxid: s.mzxid,
                pzxid: s.pzxid,
                ctime: s.ctime,
                mtime: s.mtime,
                version: s.version,
                child_creates: s.cversion,
                aversion: s.aversion,
            };
            nodes.push(Node::restored(path, node.data.as_deref(), cache.intern(&acl), kind, persisted));
        }
        DataTree::restore(Zxid::from_raw(self.last_zxid), self.sessions, cache, nodes)
    }
}
