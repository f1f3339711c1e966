//! Outstanding changes: what prepared, not yet committed transactions did to
//! the nodes they touched, as prep needs to see it (ZooKeeper's
//! `outstandingChanges` and `outstandingChangesForPath`).
//!
//! Prep reads a node through three layers, newest first: the changes of the
//! request being prepared (a multi's earlier ops), these outstanding
//! changes, then the committed tree. So a write prepared while earlier ones
//! are still being logged (or, in an ensemble, replicated) sees their
//! effects, while the committed tree holds only what is durable and
//! agreed.
//!
//! Each prepared transaction's changes are pushed under its zxid. When
//! transactions commit, [`Outstanding::trim`] drops every change whose
//! zxid is committed (the committed tree now says the same), unless a later
//! outstanding transaction changed the path again. [`Outstanding::clear`]
//! drops them all: prep then sees the committed tree alone, as a server
//! that lost the leadership must.

use crate::core::tree;
use crate::core::txn::NodeKind;
use crate::core::zxid::Zxid;
use crate::proto::records::Acl;
use ahash::AHashMap as HashMap;
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::sync::Arc;

/// What prep needs to know of a node (ZooKeeper's `ChangeRecord`).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub acl: Arc<Vec<Acl>>,
    pub version: i32,
    pub aversion: i32,
    pub child_creates: i32,
    pub num_children: usize,
    pub kind: NodeKind,
    /// The data's length in bytes (what a quota counts).
    pub data_len: usize,
}

impl Record {
    /// The record of a committed node.
    pub fn of(node: &tree::Node) -> Record {
        Record {
            acl: node.acl.clone(),
            version: node.persisted.version,
            aversion: node.persisted.aversion,
            child_creates: node.persisted.child_creates,
            num_children: node.children.len(),
            kind: node.kind(),
            data_len: node.data_len(),
        }
    }
}

/// The changes of one transaction, by path; `None` marks a deleted node.
pub type Changes = HashMap<Arc<str>, Option<Record>>;

/// The outstanding changes of every prepared, uncommitted transaction.
#[derive(Debug, Default)]
pub struct Outstanding {
    /// The newest change of each path, and the zxid that made it.
    by_path: HashMap<Arc<str>, (Zxid, Option<Record>)>,
    /// The paths each outstanding transaction changed, in zxid order (most
    /// change two: a node and its parent, kept inline).
    by_zxid: VecDeque<(Zxid, SmallVec<[Arc<str>; 2]>)>,
}

impl Outstanding {
    /// The newest outstanding change of `path`: `Some(None)` if it was
    /// deleted, `None` if no outstanding transaction touched it.
    pub fn get(&self, path: &str) -> Option<&Option<Record>> {
        self.by_path.get(path).map(|(_, record)| record)
    }

    /// Records what transaction `zxid` (newer than every outstanding one) changed.
    pub fn push(&mut self, zxid: Zxid, changes: Changes) {
        assert!(self.by_zxid.back().is_none_or(|(last, _)| *last < zxid), "outstanding changes are pushed in zxid order");
        if changes.is_empty() {
            return;
        }
        let mut paths = SmallVec::with_capacity(changes.len());
        for (path, record) in changes {
            paths.push(path.clone());
            self.by_path.insert(path, (zxid, record));
        }
        self.by_zxid.push_back((zxid, paths));
    }

    /// Drops the changes of every transaction up to `committed`: the
    /// committed tree holds them now.
    pub fn trim(&mut self, committed: Zxid) {
        while let Some((zxid, _)) = self.by_zxid.front() {
            if *zxid > committed {
                break;
            }
            let (zxid, paths) = self.by_zxid.pop_front().expect("front exists");
            for path in paths {
                // A later outstanding transaction may have changed it again: keep that.
                if self.by_path.get(&path).is_some_and(|(newest, _)| *newest == zxid) {
                    self.by_path.remove(&path);
                }
            }
        }
        debug_assert!(self.by_path.values().all(|(zxid, _)| *zxid > committed), "no committed change stays outstanding");
    }

    /// Drops every outstanding change.
    pub fn clear(&mut self) {
        self.by_path.clear();
        self.by_zxid.clear();
    }

    /// Paths of nodes that outstanding transactions created as ephemerals
    /// of `session_id` and that still exist in this layer.
    pub fn ephemerals_of(&self, session_id: i64) -> impl Iterator<Item = &Arc<str>> {
        self.by_path.iter().filter_map(move |(path, (_, record))| match record {
            Some(Record { kind: NodeKind::Ephemeral { session_id: owner }, .. }) if *owner == session_id => Some(path),
            _ => None,
        })
    }

    /// Whether no change is outstanding.
    pub fn is_empty(&self) -> bool {
        debug_assert_eq!(self.by_path.is_empty(), self.by_zxid.is_empty(), "both indexes hold the same transactions");
        self.by_zxid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: i32) -> Option<Record> {
        Some(Record { acl: Arc::new(tree::open_acl()), version, aversion: 0, child_creates: 0, num_children: 0, data_len: 0, kind: NodeKind::Persistent })
    }

    fn changes(items: &[(&str, Option<Record>)]) -> Changes {
        items.iter().map(|(p, r)| (Arc::from(*p), r.clone())).collect()
    }

    #[test]
    fn trimming_keeps_a_path_changed_again_later() {
        let mut o = Outstanding::default();
        o.push(Zxid::from_raw(1), changes(&[("/a", record(1)), ("/b", record(1))]));
        o.push(Zxid::from_raw(2), changes(&[("/a", record(2))]));
        o.push(Zxid::from_raw(3), changes(&[("/b", None)]));
        assert_eq!(o.get("/a"), Some(&record(2)));
        assert_eq!(o.get("/b"), Some(&None), "deleted by the newest change");
        o.trim(Zxid::from_raw(1));
        assert_eq!(o.get("/a"), Some(&record(2)), "changed again by zxid 2");
        assert_eq!(o.get("/b"), Some(&None));
        o.trim(Zxid::from_raw(3));
        assert!(o.get("/a").is_none() && o.get("/b").is_none() && o.is_empty());
        o.push(Zxid::from_raw(4), changes(&[("/c", record(0))]));
        o.clear();
        assert!(o.is_empty());
    }
}
