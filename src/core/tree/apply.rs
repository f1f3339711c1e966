//! Applying a transaction to the tree: ZooKeeper's `DataTree.processTxn`.
//!
//! `apply` is total for every transaction that `prep` produced against an
//! equal tree: a transaction that does not fit (a create under a missing
//! parent, say) means the trees diverged, and that stops the process.
//! It returns the transaction's [`Effect`]: the reply's result, the watch
//! triggers in the order ZooKeeper fires them, and the [`Change`]s (new
//! nodes, removed paths, sessions) that every other tree installs as they are.

use super::{Change, DataTree, Node};
use crate::core::path;
use crate::core::txn::{NodeKind, Txn, TxnBody, TxnOp};
use crate::proto::codes::EventType;
use crate::proto::records::{Acl, Stat};
use smallvec::SmallVec;
use std::sync::Arc;

/// The result of one op, from which the owning shard builds the reply.
#[derive(Debug, Clone, PartialEq)]
pub enum OpResult {
    Created { path: String, stat: Stat },
    Deleted,
    DataSet { stat: Stat },
    AclSet { stat: Stat },
    Checked,
    Error(i32),
}

/// The result of a whole transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// A session was opened or closed.
    Session,
    Single(OpResult),
    Multi(Vec<OpResult>),
}

/// A change that may trigger watches, and the node it concerns (the new
/// version; the removed one for NodeDeleted; the parent for
/// NodeChildrenChanged). The node gives the path and the ACL a watcher needs
/// READ on to be told: ZooKeeper drops events a watcher may not read
/// (CVE-2024-23944), though the one-shot watch is still used up. Holding
/// the node (a shared pointer) rather than a copy of its path means an
/// event allocates nothing.
#[derive(Debug, Clone)]
pub struct TreeEvent {
    pub kind: EventType,
    node: Node,
}

impl TreeEvent {
    /// An event of `kind` about `node`.
    pub fn new(kind: EventType, node: &Node) -> TreeEvent {
        TreeEvent { kind, node: node.clone() }
    }

    /// The path watchers are matched against.
    pub fn path(&self) -> &str {
        self.node.path()
    }

    /// The ACL a watcher needs READ on to be told.
    pub fn acl(&self) -> &[Acl] {
        &self.node.acl
    }
}

/// A transaction's watch triggers: the two or fewer of most writes stay
/// inline (no allocation).
pub type Events = SmallVec<[TreeEvent; 2]>;

/// A transaction's changes: the two or fewer of most writes stay inline.
pub type Changes = SmallVec<[Change; 2]>;

/// Everything applying one transaction produced.
#[derive(Debug, Clone)]
pub struct Effect {
    /// What the reply reports.
    pub applied: Applied,
    /// Watch triggers, in firing order.
    pub events: Events,
    /// What other trees install to match this one.
    pub changes: Changes,
}

impl DataTree {
    /// Applies `txn`: works out its effect and installs its changes here.
    pub fn apply(&mut self, txn: &Txn) -> Effect {
        assert!(txn.zxid > self.last_zxid, "transactions apply in zxid order: {} after {}", txn.zxid, self.last_zxid);
        self.last_zxid = txn.zxid;
        let mut events = Events::new();
        let mut changes = Changes::new();
        let applied = match &txn.body {
            TxnBody::CreateSession { timeout_ms } => {
                self.record(Change::OpenSession { session_id: txn.session_id, timeout_ms: *timeout_ms }, &mut changes);
                Applied::Session
            }
            TxnBody::CloseSession => {
                self.close_session(txn.session_id, txn.zxid.raw(), &mut events, &mut changes);
                Applied::Session
            }
            TxnBody::Single(op) => Applied::Single(self.apply_op(op, txn, &mut events, &mut changes)),
            TxnBody::Multi(ops) => Applied::Multi(ops.iter().map(|op| self.apply_op(op, txn, &mut events, &mut changes)).collect()),
        };
        Effect { applied, events, changes }
    }

    /// Installs a change here and keeps it for the other trees.
    pub(super) fn record(&mut self, change: Change, changes: &mut Changes) {
        self.install_change(&change);
        changes.push(change);
    }

    fn apply_op(&mut self, op: &TxnOp, txn: &Txn, events: &mut Events, changes: &mut Changes) -> OpResult {
        match op {
            TxnOp::Create { path, data, acl, kind } => {
                let stat = self.create_node(path, data.as_deref(), acl, *kind, txn, events, changes);
                OpResult::Created { path: path.clone(), stat }
            }
            TxnOp::Delete { path } => {
                self.delete_node(path, txn.zxid.raw(), events, changes);
                OpResult::Deleted
            }
            TxnOp::SetData { path, data, version } => {
                let old = self.node_at(path);
                let old_len = old.data_len();
                let node = old.with_data(data.as_deref(), |f| {
                    f.persisted.version = *version;
                    f.persisted.mzxid = txn.zxid.raw();
                    f.persisted.mtime = txn.time_ms;
                });
                let (stat, new_len) = (node.stat(), node.data_len());
                events.push(TreeEvent::new(EventType::NodeDataChanged, &node));
                self.record(Change::Put(node), changes);
                self.quota_after_set_data(path, old_len, new_len, changes);
                OpResult::DataSet { stat }
            }
            TxnOp::SetAcl { path, acl, version } => {
                let shared = self.acls.intern(acl);
                let node = self.node_at(path).edited(|f| {
                    f.acl = shared;
                    f.persisted.aversion = *version;
                });
                let stat = node.stat();
                self.record(Change::Put(node), changes);
                OpResult::AclSet { stat }
            }
            TxnOp::Check { .. } => OpResult::Checked,
            TxnOp::Error { code } => OpResult::Error(*code),
        }
    }

    /// The node at `path`, which a transaction names, so it must exist.
    fn node_at(&self, path: &str) -> &Node {
        self.nodes.get(path).unwrap_or_else(|| panic!("trees diverged: transaction names missing node {path}"))
    }

    #[allow(clippy::too_many_arguments)]
    fn create_node(&mut self, path: &str, data: Option<&[u8]>, acl: &[Acl], kind: NodeKind, txn: &Txn, events: &mut Events, changes: &mut Changes) -> Stat {
        let (parent_path, name) = path::split(path).unwrap_or_else(|| panic!("trees diverged: create of unsplittable path {path}"));
        assert!(!self.nodes.contains(path), "trees diverged: create of existing node {path}");
        let parent = self.node_at(parent_path).edited(|f| {
            f.persisted.child_creates = f.persisted.child_creates.wrapping_add(1);
            f.persisted.pzxid = txn.zxid.raw();
            f.children.insert(name);
        });
        let acl = self.acls.intern(acl);
        let node = Node::new(path, data, acl, kind, txn.zxid.raw(), txn.time_ms);
        let (stat, data_len) = (node.stat(), node.data_len());
        events.push(TreeEvent::new(EventType::NodeCreated, &node));
        events.push(TreeEvent::new(EventType::NodeChildrenChanged, &parent));
        self.record(Change::Put(parent), changes);
        self.record(Change::Put(node), changes);
        self.quota_after_create(parent_path, name, path, data_len, changes);
        stat
    }

    fn delete_node(&mut self, path: &str, zxid: i64, events: &mut Events, changes: &mut Changes) {
        let (parent_path, name) = path::split(path).unwrap_or_else(|| panic!("trees diverged: delete of unsplittable path {path}"));
        let node = self.node_at(path).clone();
        assert!(node.children.is_empty(), "trees diverged: delete of {path} which has children");
        let parent = self.node_at(parent_path).edited(|f| {
            let removed = f.children.remove(name);
            assert!(removed, "trees diverged: {path} missing from its parent's children");
            if zxid > f.persisted.pzxid {
                f.persisted.pzxid = zxid;
            }
        });
        let data_len = node.data_len();
        events.push(TreeEvent::new(EventType::NodeDeleted, &node));
        events.push(TreeEvent::new(EventType::NodeChildrenChanged, &parent));
        self.record(Change::Remove(node), changes);
        self.record(Change::Put(parent), changes);
        self.quota_after_delete(path, data_len, changes);
    }

    fn close_session(&mut self, session_id: i64, zxid: i64, events: &mut Events, changes: &mut Changes) {
        let owned: Vec<Arc<str>> = self.ephemerals.get(&session_id).map(|set| set.iter().cloned().collect()).unwrap_or_default();
        for path in &owned {
            self.delete_node(path, zxid, events, changes);
        }
        self.record(Change::CloseSession { session_id }, changes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tree::open_acl;
    use crate::core::zxid::Zxid;

    fn txn(zxid: i64, body: TxnBody) -> Txn {
        Txn { zxid: Zxid::from_raw(zxid), time_ms: 1000 + zxid, session_id: 7, cxid: 1, body }
    }

    fn create(path: &str, kind: NodeKind) -> TxnBody {
        TxnBody::Single(TxnOp::Create { path: path.into(), data: Some(bytes::Bytes::from_static(b"d")), acl: open_acl(), kind })
    }

    #[test]
    fn create_and_delete_update_parent_stat_like_zookeeper() {
        let mut tree = DataTree::new();
        let first = tree.apply(&txn(1, create("/p", NodeKind::Persistent)));
        tree.apply(&txn(2, create("/p/a", NodeKind::Persistent)));
        tree.apply(&txn(3, create("/p/b", NodeKind::Persistent)));
        tree.apply(&txn(4, TxnBody::Single(TxnOp::Delete { path: "/p/a".into() })));
        tree.apply(&txn(5, TxnBody::Single(TxnOp::Delete { path: "/p/b".into() })));
        let p = tree.get("/p").unwrap();
        // Two creates and two deletes: cversion 4, but the next sequence number is 2.
        assert_eq!(p.stat().cversion, 4);
        assert_eq!(p.persisted.child_creates, 2);
        assert_eq!(p.stat().pzxid, 5);
        assert_eq!(p.stat().num_children, 0);
        let ev = &first.events;
        assert_eq!((ev[0].path(), ev[0].kind), ("/p", EventType::NodeCreated));
        assert_eq!((ev[1].path(), ev[1].kind), ("/", EventType::NodeChildrenChanged));
    }

    #[test]
    fn close_session_removes_its_ephemerals_only() {
        let mut tree = DataTree::new();
        tree.apply(&txn(1, TxnBody::CreateSession { timeout_ms: 4000 }));
        tree.apply(&txn(2, create("/e1", NodeKind::Ephemeral { session_id: 7 })));
        tree.apply(&txn(3, create("/e2", NodeKind::Ephemeral { session_id: 8 })));
        assert_eq!(tree.get("/e1").unwrap().stat().ephemeral_owner, 7);
        tree.apply(&txn(4, TxnBody::CloseSession));
        assert!(tree.get("/e1").is_none());
        assert!(tree.get("/e2").is_some());
        assert!(tree.sessions().is_empty());
        assert_eq!(tree.ephemeral_count(), 1);
    }

    #[test]
    fn a_tree_installing_the_changes_equals_the_tree_that_applied_them() {
        let mut primary = DataTree::new();
        let mut replica = primary.clone();
        let set = |path: &str, data: &'static [u8], version| TxnOp::SetData { path: path.into(), data: Some(bytes::Bytes::from_static(data)), version };
        let bodies = vec![
            TxnBody::CreateSession { timeout_ms: 4000 },
            create("/q", NodeKind::Persistent),
            create("/zookeeper/quota/q", NodeKind::Persistent),
            create("/zookeeper/quota/q/zookeeper_limits", NodeKind::Persistent),
            create("/zookeeper/quota/q/zookeeper_stats", NodeKind::Persistent),
            TxnBody::Multi(vec![
                TxnOp::Create { path: "/q/a".into(), data: Some(bytes::Bytes::from_static(b"abc")), acl: open_acl(), kind: NodeKind::Persistent },
                set("/q/a", b"abcdef", 1),
            ]),
            create("/q/e", NodeKind::Ephemeral { session_id: 7 }),
            create("/c", NodeKind::Container),
            TxnBody::Single(TxnOp::SetAcl { path: "/q".into(), acl: crate::core::tree::read_acl(), version: 1 }),
            TxnBody::CloseSession,
            TxnBody::Single(TxnOp::Delete { path: "/q/a".into() }),
        ];
        for (i, body) in bodies.into_iter().enumerate() {
            let t = txn(i as i64 + 1, body);
            let effect = primary.apply(&t);
            replica.install(t.zxid, &effect.changes);
        }
        let stats = primary.get("/zookeeper/quota/q/zookeeper_stats").unwrap().data();
        assert_eq!(stats, Some(&b"count=1,bytes=1"[..]), "the quota stats followed the subtree: /q and its data");
        assert!(primary.get("/q/e").is_none(), "the ephemeral went with its session");
        for tree in [&primary, &replica] {
            assert_eq!(tree.containers().len(), 1);
            assert_eq!(tree.ephemeral_count(), 0);
            assert!(tree.sessions().is_empty());
        }
        assert_eq!(primary.node_count(), replica.node_count());
        assert_eq!(primary.digest(), replica.digest(), "equal trees, equal digests");
        assert_eq!(primary.approximate_data_size(), replica.approximate_data_size());
        assert_eq!(primary.last_zxid(), replica.last_zxid());
        for (path, node) in primary.paths() {
            let copy = replica.get(path).unwrap_or_else(|| panic!("{path} missing from the replica"));
            assert_eq!((node.stat(), node.data(), &node.acl, &node.children), (copy.stat(), copy.data(), &copy.acl, &copy.children), "{path}");
        }
        let before = replica.digest();
        replica.install(Zxid::from_raw(99), &primary.clone().apply(&txn(99, TxnBody::Single(set("/c", b"x", 1)))).changes);
        assert_ne!(replica.digest(), before, "a change changes the digest");
    }

    #[test]
    #[should_panic(expected = "zxid order")]
    fn out_of_order_zxid_stops() {
        let mut tree = DataTree::new();
        tree.apply(&txn(2, create("/a", NodeKind::Persistent)));
        tree.apply(&txn(1, create("/b", NodeKind::Persistent)));
    }
}
