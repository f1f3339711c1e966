//! The data tree: every znode by path, plus the indexes ZooKeeper keeps beside
//! it (ephemerals by session, containers, TTL nodes) and the live sessions.
//!
//! A tree changes in one of two ways, and both end in the same primitive,
//! [`DataTree::install`] of [`Change`]s:
//! - [`DataTree::apply`] (the broadcast core, and recovery) works out what a
//!   transaction does, installs it, and returns the [`Effect`]: the reply,
//!   the watch triggers and the changes;
//! - every other core's tree installs those changes as they are, without
//!   working anything out again. The changes carry the new nodes themselves
//!   (shared [`Node`]s, each holding its own path), so all trees hold the
//!   same nodes and each core pays only for its map: one pointer per node
//!   (see `node_map`).
//!
//! Both are deterministic: trees that install the same changes in zxid order
//! are equal. Reads are plain lookups.

mod acl_cache;
mod apply;
mod node;
mod node_map;
mod quota;
pub use quota::NamespaceQuota;
pub mod watches;

pub use acl_cache::AclCache;
pub use apply::{Applied, Changes, Effect, Events, OpResult, TreeEvent};
pub use node::{Children, Node, NodeFields, PersistedStat};

use crate::core::path;
use crate::core::txn::NodeKind;
use crate::core::zxid::Zxid;
use crate::proto::codes::perms;
use crate::proto::records::{Acl, Id};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// `world:anyone` with every permission: ZooKeeper's OPEN_ACL_UNSAFE.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl { perms: perms::ALL, id: Id::new("world", "anyone") }]
}

/// `world:anyone` with read only: ZooKeeper's READ_ACL_UNSAFE.
pub fn read_acl() -> Vec<Acl> {
    vec![Acl { perms: perms::READ, id: Id::new("world", "anyone") }]
}

/// The nodes ZooKeeper creates in every tree.
pub const ZOOKEEPER_NODE: &str = "/zookeeper";
/// Quota bookkeeping (always present, usually empty).
pub const QUOTA_NODE: &str = "/zookeeper/quota";
/// Dynamic configuration (empty unless reconfig is enabled).
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// One step of a transaction's effect: what every tree installs.
#[derive(Debug, Clone)]
pub enum Change {
    /// This node is now at its path (created, or replacing the old one).
    Put(Node),
    /// This node (as it was) was deleted from its path.
    Remove(Node),
    /// A session opened with its negotiated timeout.
    OpenSession { session_id: i64, timeout_ms: i32 },
    /// A session ended (its ephemerals are removed by their own changes).
    CloseSession { session_id: i64 },
}

/// The replicated state: znodes and sessions.
#[derive(Debug, Clone)]
pub struct DataTree {
    nodes: node_map::NodeMap,
    acls: AclCache,
    /// Ephemeral paths by owning session.
    ephemerals: HashMap<i64, BTreeSet<Arc<str>>>,
    containers: HashSet<Arc<str>>,
    ttls: HashSet<Arc<str>>,
    /// Live sessions and their negotiated timeouts.
    sessions: HashMap<i64, i32>,
    /// The zxid of the last transaction applied.
    last_zxid: Zxid,
    /// Sum of data lengths and path lengths (ZooKeeper's approximate data size).
    data_bytes: u64,
    quota: quota::QuotaRoots,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A tree with no node at all, at `last_zxid`.
    fn empty(last_zxid: Zxid, sessions: HashMap<i64, i32>) -> DataTree {
        DataTree {
            nodes: node_map::NodeMap::default(),
            acls: AclCache::default(),
            ephemerals: HashMap::new(),
            containers: HashSet::new(),
            ttls: HashSet::new(),
            sessions,
            last_zxid,
            data_bytes: 0,
            quota: quota::QuotaRoots::default(),
        }
    }

    /// Adds `path` to the index of its kind (ephemerals by owner, containers, TTL nodes).
    fn index(&mut self, path: &str, kind: NodeKind) {
        match kind {
            NodeKind::Persistent => {}
            NodeKind::Ephemeral { session_id } => {
                self.ephemerals.entry(session_id).or_default().insert(path.into());
            }
            NodeKind::Container => {
                self.containers.insert(path.into());
            }
            NodeKind::Ttl { .. } => {
                self.ttls.insert(path.into());
            }
        }
    }

    /// Removes `path` from the index of its kind.
    fn unindex(&mut self, path: &str, kind: NodeKind) {
        match kind {
            NodeKind::Persistent => {}
            NodeKind::Ephemeral { session_id } => {
                if let Some(set) = self.ephemerals.get_mut(&session_id) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&session_id);
                    }
                }
            }
            NodeKind::Container => {
                self.containers.remove(path);
            }
            NodeKind::Ttl { .. } => {
                self.ttls.remove(path);
            }
        }
    }

    /// Installs a committed transaction's changes (what [`DataTree::apply`]
    /// returned on the broadcast core).
    pub fn install(&mut self, zxid: Zxid, changes: &[Change]) {
        assert!(zxid > self.last_zxid, "transactions install in zxid order: {zxid} after {}", self.last_zxid);
        self.last_zxid = zxid;
        for change in changes {
            self.install_change(change);
        }
    }

    /// Puts `node` at its path, keeping every index in step; true if it replaced a node.
    fn put(&mut self, node: Node) -> bool {
        let kept = node.clone();
        let path = kept.path();
        let new_bytes = (path.len() + node.data_len()) as u64;
        match self.nodes.insert(node) {
            Some(old) => {
                assert_eq!(old.kind(), kept.kind(), "a node's kind never changes: {path}");
                self.data_bytes = self.data_bytes - (path.len() + old.data_len()) as u64 + new_bytes;
                true
            }
            None => {
                self.data_bytes += new_bytes;
                self.index(path, kept.kind());
                self.quota.node_added(path);
                false
            }
        }
    }

    /// The one place nodes and sessions change, keeping every index in step.
    fn install_change(&mut self, change: &Change) {
        match change {
            Change::Put(node) => {
                self.put(node.clone());
            }
            Change::Remove(node) => {
                let path = node.path();
                let old = self.nodes.remove(path).unwrap_or_else(|| panic!("trees diverged: removing missing node {path}"));
                self.data_bytes -= (path.len() + old.data_len()) as u64;
                self.unindex(path, old.kind());
                self.quota.node_removed(path);
            }
            Change::OpenSession { session_id, timeout_ms } => {
                let previous = self.sessions.insert(*session_id, *timeout_ms);
                assert!(previous.is_none(), "session {session_id:#x} created twice");
            }
            Change::CloseSession { session_id } => {
                self.sessions.remove(session_id);
                debug_assert!(!self.ephemerals.contains_key(session_id), "a closed session's ephemerals are removed first");
            }
        }
    }

    /// A tree holding only `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> DataTree {
        let mut tree = DataTree::empty(Zxid::ZERO, HashMap::new());
        let open = tree.acls.intern(&open_acl());
        let config_acl = tree.acls.intern(&read_acl());
        let node = |path: &str, acl: &Arc<Vec<Acl>>, edit: &dyn Fn(&mut NodeFields)| {
            Node::new(path, Some(&b""[..]), acl.clone(), NodeKind::Persistent, 0, 0).edited(edit)
        };
        let root = node(path::ROOT, &open, &|f| {
            f.children.insert("zookeeper");
        });
        let zookeeper = node(ZOOKEEPER_NODE, &open, &|f| {
            f.children.insert("quota");
            f.children.insert("config");
        });
        let quota = node(QUOTA_NODE, &open, &|_| {});
        // ZooKeeper sets the config node's ACL with version -1 (DataTree.addConfigNode).
        let config = node(CONFIG_NODE, &config_acl, &|f| f.persisted.aversion = -1);
        for node in [root, zookeeper, quota, config] {
            tree.install_change(&Change::Put(node));
        }
        tree
    }

    /// The node at `path` (`""` reads as the root).
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path::normalize_read(path))
    }

    /// Number of znodes, the root included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node count ZooKeeper reports (`srvr`, `mntr`'s zk_znode_count):
    /// its tree holds the root under two keys ("" and "/"), so it counts
    /// one more than there are nodes.
    pub fn reported_node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    /// ZooKeeper's approximate data size: path lengths plus data lengths.
    pub fn approximate_data_size(&self) -> u64 {
        self.data_bytes
    }

    /// The zxid of the last applied transaction.
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// Live sessions and their timeouts.
    pub fn sessions(&self) -> &HashMap<i64, i32> {
        &self.sessions
    }

    /// The ephemeral paths owned by `session_id`.
    pub fn ephemerals_of(&self, session_id: i64) -> impl Iterator<Item = &Arc<str>> {
        self.ephemerals.get(&session_id).into_iter().flatten()
    }

    /// Every ephemeral path of every session.
    pub fn ephemerals(&self) -> &HashMap<i64, BTreeSet<Arc<str>>> {
        &self.ephemerals
    }

    /// Total number of ephemeral nodes.
    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// Container node paths.
    pub fn containers(&self) -> &HashSet<Arc<str>> {
        &self.containers
    }

    /// TTL node paths.
    pub fn ttls(&self) -> &HashSet<Arc<str>> {
        &self.ttls
    }

    /// Number of nodes below `path` (not counting `path`): getAllChildrenNumber.
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![self.get(path)];
        while let Some(node) = stack.pop() {
            let Some(node) = node else { continue };
            count += node.children.len();
            stack.extend(node.children.paths(node.path()).map(|c| self.get(&c)));
        }
        count
    }

    /// A digest of every node (path, data, stat, ACL), independent of the
    /// order nodes were added in: equal trees have equal digests, on every
    /// machine (it is built from CRC-32C, not a seeded hash). `hash` prints it.
    pub fn digest(&self) -> u64 {
        let mut sum = 0u64;
        let mut fields = Vec::with_capacity(128);
        for (path, node) in self.paths() {
            let s = node.stat();
            fields.clear();
            for v in [s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime, s.ephemeral_owner] {
                fields.extend_from_slice(&v.to_le_bytes());
            }
            for v in [s.version, s.cversion, s.aversion, s.data_length, s.num_children] {
                fields.extend_from_slice(&v.to_le_bytes());
            }
            fields.push(node.data().is_none() as u8);
            for a in node.acl.iter() {
                fields.extend_from_slice(&a.perms.to_le_bytes());
                fields.extend_from_slice(a.id.scheme.as_bytes());
                fields.push(0);
                fields.extend_from_slice(a.id.id.as_bytes());
                fields.push(0);
            }
            let data = node.data().unwrap_or_default();
            let low = crc32c::crc32c_append(crc32c::crc32c_append(crc32c::crc32c(path.as_bytes()), data), &fields);
            let high = crc32c::crc32c_append(crc32c::crc32c_append(0x9e37_79b9, &fields), path.as_bytes());
            sum = sum.wrapping_add(((high as u64) << 32) | low as u64);
        }
        sum
    }

    /// Every path in the tree, in no particular order (for dumps and snapshots).
    pub fn paths(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|n| (n.path(), n))
    }

    /// Rebuilds a tree from a snapshot: its zxid, sessions, the ACL cache
    /// its nodes' ACLs were interned in, and every node (children are
    /// linked here). Fails, naming the path, if a parent is missing or a
    /// path appears twice.
    pub fn restore(zxid: Zxid, sessions: impl IntoIterator<Item = (i64, i32)>, acls: AclCache, nodes: Vec<Node>) -> Result<DataTree, String> {
        let mut tree = DataTree::empty(zxid, sessions.into_iter().collect());
        tree.acls = acls;
        tree.nodes.reserve(nodes.len());
        // Child sets are grouped on a second thread while this one fills the map.
        let children = std::thread::scope(|s| -> Result<_, String> {
            let grouping = s.spawn(|| group_children(nodes.iter().map(Node::path)));
            for node in &nodes {
                if tree.put(node.clone()) {
                    return Err(format!("node {} appears twice", node.path()));
                }
            }
            grouping.join().expect("grouping children does not panic")
        })?;
        // The map now holds the only reference to each node, so each parent
        // can take its children in place.
        drop(nodes);
        for (parent, kids) in children {
            let node = tree.nodes.get_mut(&parent).ok_or_else(|| format!("{} nodes have no parent node {parent}", kids.len()))?;
            assert!(node.edit_unshared(|f| f.children = kids), "restored nodes are not shared yet");
        }
        if !tree.nodes.contains(path::ROOT) {
            return Err("the root node is missing".into());
        }
        Ok(tree)
    }
}

/// Every parent's children, from all paths (by parent path). Each set is
/// built in bulk, which is fastest when the paths come sorted (as snapshots
/// store them).
fn group_children<'a>(paths: impl Iterator<Item = &'a str>) -> Result<HashMap<Box<str>, Children>, String> {
    let mut slot_of: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut last: Option<(&str, usize)> = None;
    for p in paths.filter(|p| *p != path::ROOT) {
        let (parent, name) = path::split(p).ok_or_else(|| format!("node {p} has no parent path"))?;
        // Siblings mostly come one after another: skip the lookup for them.
        let slot = match last {
            Some((last_parent, slot)) if last_parent == parent => slot,
            _ => *slot_of.entry(parent).or_insert_with(|| {
                groups.push((parent, Vec::new()));
                groups.len() - 1
            }),
        };
        last = Some((parent, slot));
        groups[slot].1.push(name);
    }
    Ok(groups.into_iter().map(|(parent, kids)| (parent.into(), kids.into_iter().collect())).collect())
}
