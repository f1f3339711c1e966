//! Quota statistics, as ZooKeeper keeps them (`DataTree` quota handling).
//!
//! Clients set a quota by creating `/zookeeper/quota/<path>/zookeeper_limits`
//! and `.../zookeeper_stats`. The server then keeps the stats node's data,
//! `count=N,bytes=M`, equal to the number of nodes and data bytes in the
//! subtree at `<path>`: computed when the stats node is created, then
//! adjusted by every create, delete and setData under the nearest quota root.
//! Updates change only the stats node's data (no version, no watch), and are
//! part of applying a transaction: a `Put` of the stats node among its
//! changes, so every tree agrees.
//! Enforcement (`zookeeper.enforceQuota`) is not implemented: limits are advisory.

use super::{Change, Changes, DataTree, QUOTA_NODE};
use bytes::Bytes;
use std::collections::BTreeSet;

/// Name of the node holding a quota's limits.
pub const LIMITS_NODE: &str = "zookeeper_limits";
/// Name of the node holding a quota's usage.
pub const STATS_NODE: &str = "zookeeper_stats";

/// Paths that have a quota (a limits node exists for them).
#[derive(Debug, Default, Clone)]
pub struct QuotaRoots {
    roots: BTreeSet<String>,
}

/// The quota-tracked path a `/zookeeper/quota/...` parent stands for.
fn tracked_path(quota_parent: &str) -> Option<&str> {
    quota_parent.strip_prefix(QUOTA_NODE).filter(|p| p.starts_with('/'))
}

fn stats_path(root: &str) -> String {
    format!("{QUOTA_NODE}{root}/{STATS_NODE}")
}

/// Parses `count=N,bytes=M[,...]`, keeping unknown keys in order.
fn parse_stats(data: &[u8]) -> (i64, i64, Vec<(String, String)>) {
    let (mut count, mut bytes, mut rest) = (0, 0, Vec::new());
    for part in String::from_utf8_lossy(data).split(',') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        match k.trim() {
            "count" => count = v.trim().parse().unwrap_or(0),
            "bytes" => bytes = v.trim().parse().unwrap_or(0),
            other => rest.push((other.to_string(), v.to_string())),
        }
    }
    (count, bytes, rest)
}

fn format_stats(count: i64, bytes: i64, rest: &[(String, String)]) -> Bytes {
    let mut s = format!("count={count},bytes={bytes}");
    for (k, v) in rest {
        s.push_str(&format!(",{k}={v}"));
    }
    Bytes::from(s)
}

impl QuotaRoots {
    /// The longest quota root at or above `path` (never `/`).
    fn root_of(&self, path: &str) -> Option<&str> {
        self.roots
            .iter()
            .filter(|r| path == r.as_str() || path.strip_prefix(r.as_str()).is_some_and(|rest| rest.starts_with('/')))
            .max_by_key(|r| r.len())
            .map(String::as_str)
    }

    /// The root a limits node at `path` declares, if `path` is one.
    fn declared_by(path: &str) -> Option<&str> {
        path.strip_suffix(LIMITS_NODE).and_then(|p| p.strip_suffix('/')).and_then(tracked_path)
    }

    /// A node was added to the tree: a limits node makes its path a quota root.
    pub(super) fn node_added(&mut self, path: &str) {
        if let Some(root) = Self::declared_by(path) {
            self.roots.insert(root.to_string());
        }
    }

    /// A node was removed from the tree.
    pub(super) fn node_removed(&mut self, path: &str) {
        if let Some(root) = Self::declared_by(path) {
            self.roots.remove(root);
        }
    }
}

impl DataTree {
    /// Called after a node is created: quota bookkeeping for it.
    pub(super) fn quota_after_create(&mut self, parent: &str, name: &str, path: &str, data_len: usize, changes: &mut Changes) {
        if name == STATS_NODE
            && let Some(root) = tracked_path(parent)
        {
            self.recount_quota(root, changes);
        }
        self.adjust_quota(path, data_len as i64, 1, changes);
    }

    /// Called after a node is deleted.
    pub(super) fn quota_after_delete(&mut self, path: &str, data_len: usize, changes: &mut Changes) {
        self.adjust_quota(path, -(data_len as i64), -1, changes);
    }

    /// Called after a node's data changed size.
    pub(super) fn quota_after_set_data(&mut self, path: &str, old_len: usize, new_len: usize, changes: &mut Changes) {
        self.adjust_quota(path, new_len as i64 - old_len as i64, 0, changes);
    }

    fn adjust_quota(&mut self, path: &str, bytes_diff: i64, count_diff: i64, changes: &mut Changes) {
        let Some(root) = self.quota.root_of(path).map(str::to_string) else {
            return;
        };
        let Some(node) = self.get(&stats_path(&root)) else {
            return;
        };
        let (count, bytes, rest) = parse_stats(node.data().unwrap_or_default());
        self.set_stats(&root, format_stats(count + count_diff, bytes + bytes_diff, &rest), changes);
    }

    /// Sets a quota root's stats node to the subtree's real usage.
    fn recount_quota(&mut self, root: &str, changes: &mut Changes) {
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack = vec![self.get(root)];
        while let Some(node) = stack.pop() {
            let Some(node) = node else { continue };
            count += 1;
            bytes += node.data_len() as i64;
            stack.extend(node.children.paths(node.path()).map(|c| self.get(&c)));
        }
        self.set_stats(root, format_stats(count, bytes, &[]), changes);
    }

    /// Replaces the data of `root`'s stats node, if it exists.
    fn set_stats(&mut self, root: &str, data: Bytes, changes: &mut Changes) {
        let Some(node) = self.nodes.get(stats_path(root).as_str()) else {
            return;
        };
        let change = Change::Put(node.with_data(Some(&data), |_| {}));
        self.record(change, changes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_text_round_trips() {
        let (c, b, rest) = parse_stats(b"count=3,bytes=15,extra=1");
        assert_eq!((c, b), (3, 15));
        assert_eq!(format_stats(c + 1, b, &rest), Bytes::from_static(b"count=4,bytes=15,extra=1"));
        let mut roots = QuotaRoots::default();
        roots.roots.insert("/a".into());
        roots.roots.insert("/a/b".into());
        assert_eq!(roots.root_of("/a/b/c"), Some("/a/b"));
        assert_eq!(roots.root_of("/a/bc"), Some("/a"));
        assert_eq!(roots.root_of("/x"), None);
        assert_eq!(tracked_path("/zookeeper/quota/a/b"), Some("/a/b"));
    }
}
