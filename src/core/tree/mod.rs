//! The data tree: every znode by path, plus the indexes ZooKeeper keeps beside
//! it (ephemerals by session, containers, TTL nodes) and the live sessions.
//!
//! A tree changes only through [`DataTree::apply`], which is total and
//! deterministic: every replica that applies the same transactions in zxid
//! order holds the same tree. Reads are plain lookups.

mod acl_cache;
mod apply;
mod node;
mod quota;
pub mod watches;

pub use apply::{Applied, OpResult, TreeEvent};
pub use node::{Node, PersistedStat};

use crate::core::path;
use crate::core::txn::NodeKind;
use crate::proto::codes::perms;
use crate::proto::records::{Acl, Id};
use acl_cache::AclCache;
use std::collections::{BTreeSet, HashMap, HashSet};

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

/// The replicated state: znodes and sessions.
#[derive(Debug, Clone)]
pub struct DataTree {
    /// aHash: several times faster than SipHash on paths, and still seeded
    /// per map, so clients cannot aim collisions at it.
    nodes: HashMap<Box<str>, Node, ahash::RandomState>,
    acls: AclCache,
    /// Ephemeral paths by owning session.
    ephemerals: HashMap<i64, BTreeSet<String>>,
    containers: HashSet<String>,
    ttls: HashSet<String>,
    /// Live sessions and their negotiated timeouts.
    sessions: HashMap<i64, i32>,
    /// The zxid of the last transaction applied.
    last_zxid: i64,
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
    fn empty(last_zxid: i64, sessions: HashMap<i64, i32>) -> DataTree {
        DataTree {
            nodes: HashMap::default(),
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
                self.ephemerals.entry(session_id).or_default().insert(path.to_string());
            }
            NodeKind::Container => {
                self.containers.insert(path.to_string());
            }
            NodeKind::Ttl { .. } => {
                self.ttls.insert(path.to_string());
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

    /// A tree holding only `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> DataTree {
        let mut tree = DataTree::empty(0, HashMap::new());
        tree.data_bytes = path::ROOT.len() as u64;
        let open = tree.acls.intern(&open_acl());
        let empty = || Some(bytes::Bytes::new());
        tree.nodes.insert(path::ROOT.into(), Node::new(empty(), open.clone(), NodeKind::Persistent, 0, 0));
        for (p, acl) in [(ZOOKEEPER_NODE, open.clone()), (QUOTA_NODE, open), (CONFIG_NODE, tree.acls.intern(&read_acl()))] {
            let (parent, name) = path::split(p).expect("built-in paths have parents");
            tree.nodes.get_mut(parent).expect("built-in parents come first").children.insert(name.into());
            tree.nodes.insert(p.into(), Node::new(empty(), acl, NodeKind::Persistent, 0, 0));
            tree.data_bytes += p.len() as u64;
        }
        // ZooKeeper sets the config node's ACL with version -1 (DataTree.addConfigNode).
        tree.nodes.get_mut(CONFIG_NODE).expect("just inserted").persisted.aversion = -1;
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

    /// ZooKeeper's approximate data size: path lengths plus data lengths.
    pub fn approximate_data_size(&self) -> u64 {
        self.data_bytes
    }

    /// The zxid of the last applied transaction.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Live sessions and their timeouts.
    pub fn sessions(&self) -> &HashMap<i64, i32> {
        &self.sessions
    }

    /// The ephemeral paths owned by `session_id`.
    pub fn ephemerals_of(&self, session_id: i64) -> impl Iterator<Item = &String> {
        self.ephemerals.get(&session_id).into_iter().flatten()
    }

    /// Every ephemeral path of every session.
    pub fn ephemerals(&self) -> &HashMap<i64, BTreeSet<String>> {
        &self.ephemerals
    }

    /// Total number of ephemeral nodes.
    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// Container node paths.
    pub fn containers(&self) -> &HashSet<String> {
        &self.containers
    }

    /// TTL node paths.
    pub fn ttls(&self) -> &HashSet<String> {
        &self.ttls
    }

    /// Number of nodes below `path` (not counting `path`): getAllChildrenNumber.
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path::normalize_read(path).to_string()];
        while let Some(p) = stack.pop() {
            let Some(node) = self.nodes.get(p.as_str()) else {
                continue;
            };
            count += node.children.len();
            stack.extend(node.children.iter().map(|c| path::join(&p, c)));
        }
        count
    }

    /// Every path in the tree, in no particular order (for dumps and snapshots).
    pub fn paths(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(p, n)| (p.as_ref(), n))
    }

    /// Rebuilds a tree from a snapshot: its zxid, sessions, distinct ACL
    /// lists and every node (children are linked here). Fails, naming the
    /// path, if a parent is missing, a path appears twice or an ACL index is
    /// out of range.
    pub fn restore(
        zxid: i64,
        sessions: impl IntoIterator<Item = (i64, i32)>,
        acl_lists: &[Vec<Acl>],
        nodes: impl IntoIterator<Item = (String, RestoredNode)>,
    ) -> Result<DataTree, String> {
        let mut tree = DataTree::empty(zxid, sessions.into_iter().collect());
        let shared: Vec<_> = acl_lists.iter().map(|l| tree.acls.intern(l)).collect();
        let nodes: Vec<(String, RestoredNode)> = nodes.into_iter().collect();
        let children = group_children(nodes.iter().map(|(p, _)| p.as_str()))?;
        tree.nodes.reserve(nodes.len());
        for (p, n) in nodes {
            let acl = shared.get(n.acl).cloned().ok_or_else(|| format!("node {p} names ACL list {} of {}", n.acl, shared.len()))?;
            let node = Node { data: n.data, acl, kind: n.kind, persisted: n.persisted, children: Default::default() };
            tree.data_bytes += (p.len() + node.data_len()) as u64;
            tree.index(&p, node.kind);
            match tree.nodes.entry(p.into_boxed_str()) {
                std::collections::hash_map::Entry::Occupied(e) => return Err(format!("node {} appears twice", e.key())),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(node);
                }
            }
        }
        for (parent, names) in children {
            let node = tree.nodes.get_mut(&*parent).ok_or_else(|| format!("{} nodes have no parent node {parent}", names.len()))?;
            node.children = names;
        }
        if !tree.nodes.contains_key(path::ROOT) {
            return Err("the root node is missing".into());
        }
        tree.rebuild_quota_roots();
        Ok(tree)
    }
}

/// A node's children's names, sorted.
type ChildNames = BTreeSet<Box<str>>;

/// Every parent's child set, from all paths. One allocation per child name
/// and one per distinct parent; each set is built in bulk, which is linear
/// when the paths come sorted (as snapshots store them) and a sort otherwise.
fn group_children<'a>(paths: impl Iterator<Item = &'a str>) -> Result<Vec<(Box<str>, ChildNames)>, String> {
    let mut slot_of: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<(&str, Vec<Box<str>>)> = Vec::new();
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
        groups[slot].1.push(name.into());
    }
    Ok(groups.into_iter().map(|(parent, names)| (parent.into(), names.into_iter().collect())).collect())
}

/// A node as a snapshot stores it: everything but its children.
#[derive(Debug, Clone)]
pub struct RestoredNode {
    pub data: Option<bytes::Bytes>,
    /// Index into the snapshot's ACL lists.
    pub acl: usize,
    pub kind: NodeKind,
    pub persisted: PersistedStat,
}
