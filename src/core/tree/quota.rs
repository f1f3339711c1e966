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
//!
//! With `enforceQuota=true` (ZooKeeper 3.7+), prep refuses a create or
//! setData that would take the subtree past a hard limit
//! (`countHardLimit`, `byteHardLimit`) with QuotaExceeded
//! ([`DataTree::check_quota`]); soft limits (`count`, `bytes`) stay
//! advisory. As in ZooKeeper, the check reads the committed stats, so
//! requests in flight together (pipelined, or several creates in one
//! multi) may pass a limit by the number in flight.

use super::{Change, Changes, DataTree, QUOTA_NODE};
use crate::proto::codes::ErrorCode;
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

fn limits_path(root: &str) -> String {
    format!("{QUOTA_NODE}{root}/{LIMITS_NODE}")
}

/// A limits node's hard limits (ZooKeeper's `StatsTrack` keys
/// `countHardLimit` and `byteHardLimit`), -1 for none. Its soft limits,
/// `count` and `bytes`, refuse nothing (ZooKeeper only logs them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HardLimits {
    count: i64,
    bytes: i64,
}

/// One namespace's quotas, summed over its quota roots (ZooKeeper's
/// `QuotaMetricsUtils`): limits (hard where set, else soft) and usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceQuota {
    /// The first component of the quota roots' paths (`app` for `/app/x`).
    pub namespace: String,
    pub count_limit: i64,
    pub bytes_limit: i64,
    pub count_usage: i64,
    pub bytes_usage: i64,
}

/// The value of `key` in a limits node's text (see [`HardLimits::parse`]), -1 if absent.
fn limit_value(text: &str, key: &str) -> i64 {
    text.split([',', ';'])
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .and_then(|(_, v)| v.split('=').next()?.trim().parse().ok())
        .unwrap_or(-1)
}

impl HardLimits {
    /// Parses both ZooKeeper's old text, `count=N,bytes=M` (no hard
    /// limits), and 3.7's, `count=N,bytes=M=;byteHardLimit=B;countHardLimit=C`:
    /// pairs split at `,` or `;`, the value is what lies between the first
    /// `=` and any second one. A key that is missing or not a number is -1.
    fn parse(data: &[u8]) -> HardLimits {
        let text = String::from_utf8_lossy(data);
        HardLimits { count: limit_value(&text, "countHardLimit"), bytes: limit_value(&text, "byteHardLimit") }
    }
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
    /// Every namespace's quotas, by namespace (the quota gauges of /metrics).
    pub fn quota_by_namespace(&self) -> Vec<NamespaceQuota> {
        let mut by_namespace: std::collections::BTreeMap<&str, NamespaceQuota> = std::collections::BTreeMap::new();
        for root in &self.quota.roots {
            let namespace = root.trim_start_matches('/').split('/').next().unwrap_or_default();
            let q = by_namespace.entry(namespace).or_insert_with(|| NamespaceQuota { namespace: namespace.to_string(), ..Default::default() });
            if let Some(limits) = self.get(&limits_path(root)) {
                let text = String::from_utf8_lossy(limits.data().unwrap_or_default()).into_owned();
                let limit = |hard: &str, soft: &str| Some(limit_value(&text, hard)).filter(|l| *l > -1).unwrap_or_else(|| limit_value(&text, soft));
                q.count_limit += limit("countHardLimit", "count");
                q.bytes_limit += limit("byteHardLimit", "bytes");
            }
            if let Some(stats) = self.get(&stats_path(root)) {
                let (count, bytes, _) = parse_stats(stats.data().unwrap_or_default());
                q.count_usage += count;
                q.bytes_usage += bytes;
            }
        }
        by_namespace.into_values().collect()
    }

    /// `checkQuota` under `enforceQuota`: whether adding `count_diff` nodes
    /// and `bytes_diff` data bytes at `path` keeps its quota root (the
    /// deepest one above it) within its hard limits, as the committed stats
    /// stand. A limit of N allows a subtree of N nodes, its root included.
    pub fn check_quota(&self, path: &str, bytes_diff: i64, count_diff: i64) -> Result<(), ErrorCode> {
        let Some(root) = self.quota.root_of(path) else {
            return Ok(());
        };
        let Some(limits) = self.get(&limits_path(root)).map(|n| HardLimits::parse(n.data().unwrap_or_default())) else {
            return Ok(());
        };
        let count_limit = Some(limits.count).filter(|&l| l > -1 && count_diff != 0);
        let bytes_limit = Some(limits.bytes).filter(|&l| l > -1 && bytes_diff != 0);
        if count_limit.is_none() && bytes_limit.is_none() {
            return Ok(());
        }
        let Some((count, bytes, _)) = self.get(&stats_path(root)).map(|n| parse_stats(n.data().unwrap_or_default())) else {
            return Ok(());
        };
        let over = |used: i64, diff: i64, limit: Option<i64>| limit.is_some_and(|limit| used.saturating_add(diff) > limit);
        if over(count, count_diff, count_limit) || over(bytes, bytes_diff, bytes_limit) {
            return Err(ErrorCode::QuotaExceeded);
        }
        Ok(())
    }

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

    #[test]
    fn limits_parse_both_zookeeper_formats() {
        assert_eq!(HardLimits::parse(b"count=5,bytes=100"), HardLimits { count: -1, bytes: -1 });
        // What zkCli 3.7+ writes after `setquota -N 2` and `setquota -B 30`.
        let both = HardLimits::parse(b"count=-1,bytes=-1=;byteHardLimit=30;countHardLimit=2");
        assert_eq!(both, HardLimits { count: 2, bytes: 30 });
        assert_eq!(HardLimits::parse(b"countHardLimit=x;;=;byteHardLimit"), HardLimits { count: -1, bytes: -1 });
    }
}
