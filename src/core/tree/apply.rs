//! Applying a transaction to the tree: ZooKeeper's `DataTree.processTxn`.
//!
//! `apply` is total for every transaction that `prep` produced against an
//! equal tree: a transaction that does not fit (a create under a missing
//! parent, say) means the replicas diverged, and that stops the process.
//! Watch triggers are returned as [`TreeEvent`]s, in the order ZooKeeper
//! fires them, for the caller's watch registry.

use super::{DataTree, Node};
use crate::core::path;
use crate::core::txn::{NodeKind, Txn, TxnBody, TxnOp};
use crate::proto::codes::EventType;
use crate::proto::records::{Acl, Stat};
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

/// A change that may trigger watches, with the ACL a watcher needs READ on
/// to be told (the node's; the parent's for NodeChildrenChanged): ZooKeeper
/// drops events a watcher may not read (CVE-2024-23944), though the one-shot
/// watch is still used up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEvent {
    pub path: String,
    pub kind: EventType,
    pub acl: Arc<Vec<Acl>>,
}

impl DataTree {
    /// Applies `txn`, appending the watch triggers it causes to `events`.
    pub fn apply(&mut self, txn: &Txn, events: &mut Vec<TreeEvent>) -> Applied {
        assert!(txn.zxid > self.last_zxid, "transactions apply in zxid order: {:#x} after {:#x}", txn.zxid, self.last_zxid);
        self.last_zxid = txn.zxid;
        match &txn.body {
            TxnBody::CreateSession { timeout_ms } => {
                let previous = self.sessions.insert(txn.session_id, *timeout_ms);
                assert!(previous.is_none(), "session {:#x} created twice", txn.session_id);
                Applied::Session
            }
            TxnBody::CloseSession => {
                self.close_session(txn.session_id, txn.zxid, events);
                Applied::Session
            }
            TxnBody::Single(op) => Applied::Single(self.apply_op(op, txn, events)),
            TxnBody::Multi(ops) => Applied::Multi(ops.iter().map(|op| self.apply_op(op, txn, events)).collect()),
        }
    }

    fn apply_op(&mut self, op: &TxnOp, txn: &Txn, events: &mut Vec<TreeEvent>) -> OpResult {
        match op {
            TxnOp::Create { path, data, acl, kind } => {
                let stat = self.create_node(path, data.clone(), acl, *kind, txn, events);
                OpResult::Created { path: path.clone(), stat }
            }
            TxnOp::Delete { path } => {
                self.delete_node(path, txn.zxid, events);
                OpResult::Deleted
            }
            TxnOp::SetData { path, data, version } => {
                let node = self.node_mut(path);
                let old_len = node.data_len();
                node.data = data.clone();
                node.persisted.version = *version;
                node.persisted.mzxid = txn.zxid;
                node.persisted.mtime = txn.time_ms;
                let (stat, new_len, acl) = (node.stat(), node.data_len(), node.acl.clone());
                self.data_bytes = self.data_bytes - old_len as u64 + new_len as u64;
                self.quota_after_set_data(path, old_len, new_len);
                events.push(TreeEvent { path: path.clone(), kind: EventType::NodeDataChanged, acl });
                OpResult::DataSet { stat }
            }
            TxnOp::SetAcl { path, acl, version } => {
                let shared = self.acls.intern(acl);
                let node = self.node_mut(path);
                node.acl = shared;
                node.persisted.aversion = *version;
                let stat = node.stat();
                OpResult::AclSet { stat }
            }
            TxnOp::Check { .. } => OpResult::Checked,
            TxnOp::Error { code } => OpResult::Error(*code),
        }
    }

    fn node_mut(&mut self, path: &str) -> &mut Node {
        self.nodes.get_mut(path).unwrap_or_else(|| panic!("replica diverged: transaction names missing node {path}"))
    }

    fn create_node(
        &mut self,
        path: &str,
        data: Option<bytes::Bytes>,
        acl: &[crate::proto::records::Acl],
        kind: NodeKind,
        txn: &Txn,
        events: &mut Vec<TreeEvent>,
    ) -> Stat {
        let (parent_path, name) = path::split(path).unwrap_or_else(|| panic!("replica diverged: create of unsplittable path {path}"));
        assert!(!self.nodes.contains_key(path), "replica diverged: create of existing node {path}");
        let parent = self.node_mut(parent_path);
        parent.persisted.child_creates = parent.persisted.child_creates.wrapping_add(1);
        parent.persisted.pzxid = txn.zxid;
        parent.children.insert(name.into());
        let parent_acl = parent.acl.clone();
        let acl = self.acls.intern(acl);
        let node = Node::new(data, acl.clone(), kind, txn.zxid, txn.time_ms);
        let (stat, data_len) = (node.stat(), node.data_len());
        self.data_bytes += (path.len() + data_len) as u64;
        self.nodes.insert(path.into(), node);
        self.quota_after_create(parent_path, name, path, data_len);
        self.index(path, kind);
        events.push(TreeEvent { path: path.to_string(), kind: EventType::NodeCreated, acl });
        events.push(TreeEvent { path: parent_path.to_string(), kind: EventType::NodeChildrenChanged, acl: parent_acl });
        stat
    }

    fn delete_node(&mut self, path: &str, zxid: i64, events: &mut Vec<TreeEvent>) {
        let (parent_path, name) = path::split(path).unwrap_or_else(|| panic!("replica diverged: delete of unsplittable path {path}"));
        let node = self.nodes.remove(path).unwrap_or_else(|| panic!("replica diverged: delete of missing node {path}"));
        assert!(node.children.is_empty(), "replica diverged: delete of {path} which has children");
        let parent = self.node_mut(parent_path);
        let parent_acl = parent.acl.clone();
        let removed = parent.children.remove(name);
        assert!(removed, "replica diverged: {path} missing from its parent's children");
        if zxid > parent.persisted.pzxid {
            parent.persisted.pzxid = zxid;
        }
        self.data_bytes -= (path.len() + node.data_len()) as u64;
        self.unindex(path, node.kind);
        self.quota_after_delete(parent_path, name, path, node.data_len());
        events.push(TreeEvent { path: path.to_string(), kind: EventType::NodeDeleted, acl: node.acl });
        events.push(TreeEvent { path: parent_path.to_string(), kind: EventType::NodeChildrenChanged, acl: parent_acl });
    }

    fn close_session(&mut self, session_id: i64, zxid: i64, events: &mut Vec<TreeEvent>) {
        self.sessions.remove(&session_id);
        let owned = self.ephemerals.remove(&session_id).unwrap_or_default();
        for path in &owned {
            // Re-insert so delete_node's index bookkeeping sees a consistent state.
            self.ephemerals.entry(session_id).or_default().insert(path.clone());
            self.delete_node(path, zxid, events);
        }
        debug_assert!(!self.ephemerals.contains_key(&session_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tree::open_acl;

    fn txn(zxid: i64, body: TxnBody) -> Txn {
        Txn { zxid, time_ms: 1000 + zxid, session_id: 7, cxid: 1, body }
    }

    fn create(path: &str, kind: NodeKind) -> TxnBody {
        TxnBody::Single(TxnOp::Create { path: path.into(), data: Some(bytes::Bytes::from_static(b"d")), acl: open_acl(), kind })
    }

    #[test]
    fn create_and_delete_update_parent_stat_like_zookeeper() {
        let mut tree = DataTree::new();
        let mut ev = Vec::new();
        tree.apply(&txn(1, create("/p", NodeKind::Persistent)), &mut ev);
        tree.apply(&txn(2, create("/p/a", NodeKind::Persistent)), &mut ev);
        tree.apply(&txn(3, create("/p/b", NodeKind::Persistent)), &mut ev);
        tree.apply(&txn(4, TxnBody::Single(TxnOp::Delete { path: "/p/a".into() })), &mut ev);
        tree.apply(&txn(5, TxnBody::Single(TxnOp::Delete { path: "/p/b".into() })), &mut ev);
        let p = tree.get("/p").unwrap();
        // Two creates and two deletes: cversion 4, but the next sequence number is 2.
        assert_eq!(p.stat().cversion, 4);
        assert_eq!(p.persisted.child_creates, 2);
        assert_eq!(p.stat().pzxid, 5);
        assert_eq!(p.stat().num_children, 0);
        assert_eq!((ev[0].path.as_str(), ev[0].kind), ("/p", EventType::NodeCreated));
        assert_eq!((ev[1].path.as_str(), ev[1].kind), ("/", EventType::NodeChildrenChanged));
    }

    #[test]
    fn close_session_removes_its_ephemerals_only() {
        let mut tree = DataTree::new();
        let mut ev = Vec::new();
        tree.apply(&txn(1, TxnBody::CreateSession { timeout_ms: 4000 }), &mut ev);
        tree.apply(&txn(2, create("/e1", NodeKind::Ephemeral { session_id: 7 })), &mut ev);
        tree.apply(&txn(3, create("/e2", NodeKind::Ephemeral { session_id: 8 })), &mut ev);
        assert_eq!(tree.get("/e1").unwrap().stat().ephemeral_owner, 7);
        tree.apply(&txn(4, TxnBody::CloseSession), &mut ev);
        assert!(tree.get("/e1").is_none());
        assert!(tree.get("/e2").is_some());
        assert!(tree.sessions().is_empty());
        assert_eq!(tree.ephemeral_count(), 1);
    }

    #[test]
    #[should_panic(expected = "zxid order")]
    fn out_of_order_zxid_stops() {
        let mut tree = DataTree::new();
        tree.apply(&txn(2, create("/a", NodeKind::Persistent)), &mut Vec::new());
        tree.apply(&txn(1, create("/b", NodeKind::Persistent)), &mut Vec::new());
    }
}
