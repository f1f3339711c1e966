//! Four-letter-word reports gathered from every shard, and the container
//! and TTL reaper's decisions.

use super::Sequencer;
use crate::core::messages::{AdminQuery, AdminReport, Origin, ShardReport, ToShard};
use crate::core::prep::{self, PrepContext};
use crate::core::txn::NodeKind;
use crate::proto::codes::OpCode;
use crate::proto::request::Request;
use std::collections::HashMap;
use std::sync::Arc;

/// A report being gathered from the shards.
#[derive(Debug)]
struct Gather {
    origin: Origin,
    query: AdminQuery,
    parts: Vec<ShardReport>,
    remaining: usize,
}

/// The reports being gathered.
#[derive(Debug, Default)]
pub(super) struct Reports {
    gathers: HashMap<u64, Gather>,
    next_token: u64,
}

impl Sequencer {
    /// A four-letter word needs every shard's part: ask them all.
    pub(super) fn start_report(&mut self, origin: Origin, query: AdminQuery) {
        self.reports.next_token += 1;
        let token = self.reports.next_token;
        let earlier = self.reports.gathers.insert(token, Gather { origin, query, parts: Vec::with_capacity(self.shard_count), remaining: self.shard_count });
        assert!(earlier.is_none(), "report tokens are never reused");
        for shard in 0..self.shard_count {
            self.out.messages.push((shard, ToShard::AdminCollect { token, query }));
        }
    }

    /// One shard's part of a report; the last part completes it.
    pub(super) fn report_part(&mut self, token: u64, part: ShardReport) {
        let Some(g) = self.reports.gathers.get_mut(&token) else {
            return;
        };
        assert!(g.remaining > 0, "a finished report takes no more parts");
        g.parts.push(part);
        g.remaining -= 1;
        if g.remaining > 0 {
            return;
        }
        let g = self.reports.gathers.remove(&token).expect("present above");
        debug_assert_eq!(g.parts.len(), self.shard_count, "every shard answered");
        let (mono, wall) = (self.now.mono_ms, self.now.wall_ms);
        let report = AdminReport {
            last_zxid: self.tree.last_zxid().raw(),
            node_count: self.tree.node_count() + 1,
            approximate_data_size: self.tree.approximate_data_size(),
            ephemerals: self.tree.ephemerals().iter().map(|(s, paths)| (*s, paths.iter().map(|p| p.to_string()).collect())).collect(),
            sessions: self.sessions.expiries().into_iter().map(|(id, timeout, at)| (id, timeout, wall + (at - mono))).collect(),
            shards: g.parts,
            uptime_ms: (mono - self.started.mono_ms) as u64,
            mode: self.mode(),
            digest: (g.query == AdminQuery::Digest).then(|| self.tree.digest()),
        };
        self.out.messages.push((g.origin.shard, ToShard::AdminReply { conn: g.origin.conn, report: Arc::new(report) }));
    }

    /// Deletes empty containers that once had children, and expired TTL
    /// nodes (ZooKeeper's ContainerManager), through the normal write path.
    /// Candidates come from the committed tree; a node that outstanding
    /// writes changed is left for the next run.
    pub(super) fn reap_containers(&mut self) {
        let per_run = (self.cfg.container_max_per_minute as u64 * self.cfg.container_check_interval_ms / 60_000).max(1) as usize;
        let mut candidates: Vec<String> = Vec::new();
        for path in self.tree.containers() {
            let node = self.tree.get(path).expect("indexed containers exist");
            if node.children.is_empty() && node.persisted.child_creates > 0 {
                candidates.push(path.to_string());
            }
        }
        for path in self.tree.ttls() {
            let node = self.tree.get(path).expect("indexed TTL nodes exist");
            if let NodeKind::Ttl { ttl_ms } = node.kind()
                && node.children.is_empty()
                && self.now.wall_ms - node.persisted.mtime > ttl_ms
            {
                candidates.push(path.to_string());
            }
        }
        candidates.retain(|path| self.outstanding.get(path).is_none());
        candidates.sort();
        let before = self.prepared;
        for path in candidates.into_iter().take(per_run) {
            let req = Request::DeleteContainer { path };
            let ctx = PrepContext { session_id: 0, ids: &[], extended_types: self.cfg.extended_types };
            let prepared = prep::prep(&self.tree, &self.outstanding, OpCode::DeleteContainer, &req, &ctx);
            self.propose(0, 0, prepared, None);
        }
        assert!(self.prepared.raw() - before.raw() <= per_run as i64, "the reaper deletes at most {per_run} nodes a run");
    }
}
