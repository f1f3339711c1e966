//! Four-letter-word reports gathered from every shard, and the container
//! and TTL reaper's decisions.

use super::Sequencer;
use crate::core::consensus::{self, ELECTION_TICKS, RAFT_TICK_MS};
use crate::core::messages::{AdminQuery, AdminReport, BroadcastStats, EnsembleReport, LeaderReport, Origin, ShardReport, ToShard};
use crate::core::prep::{self, PrepContext};
use crate::core::txn::NodeKind;
use crate::proto::codes::OpCode;
use crate::proto::request::Request;
use raft::{ProgressState, StateRole};
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

/// This server's leadership of the current term: since when, and the sizes of its proposals.
#[derive(Debug)]
pub(super) struct Leadership {
    since_ms: i64,
    last_proposal: i64,
    min_proposal: i64,
    max_proposal: i64,
}

impl Leadership {
    /// Leadership gained at `now_ms` (monotonic), no proposal yet.
    pub(super) fn new(now_ms: i64) -> Leadership {
        Leadership { since_ms: now_ms, last_proposal: -1, min_proposal: -1, max_proposal: -1 }
    }

    /// A proposal of `bytes` bytes.
    pub(super) fn proposed(&mut self, bytes: usize) {
        let bytes = bytes as i64;
        self.last_proposal = bytes;
        self.min_proposal = if self.min_proposal < 0 { bytes } else { self.min_proposal.min(bytes) };
        self.max_proposal = self.max_proposal.max(bytes);
        debug_assert!(self.min_proposal <= self.last_proposal && self.last_proposal <= self.max_proposal, "min <= last <= max");
    }
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
            node_count: self.tree.reported_node_count(),
            approximate_data_size: self.tree.approximate_data_size(),
            ephemerals: self.tree.ephemerals().iter().map(|(s, paths)| (*s, paths.iter().map(|p| p.to_string()).collect())).collect(),
            sessions: self.sessions.expiries().into_iter().map(|(id, timeout, at)| (id, timeout, wall + (at - mono))).collect(),
            shards: g.parts,
            uptime_ms: (mono - self.started.mono_ms) as u64,
            mode: self.mode(),
            digest: (g.query == AdminQuery::Digest).then(|| self.tree.digest()),
            ensemble: self.ensemble_report(),
            broadcast: BroadcastStats {
                term: self.raft.raft.term,
                commit_index: self.raft.raft.raft_log.committed,
                applied_index: self.applied,
                ..self.stats.clone()
            },
            quotas: self.tree.quota_by_namespace(),
        };
        self.out.messages.push((g.origin.shard, ToShard::AdminReply { conn: g.origin.conn, report: Arc::new(report) }));
    }

    /// This server's place in its ensemble; none when it is standalone.
    fn ensemble_report(&self) -> Option<EnsembleReport> {
        let (voters, learners) = consensus::membership(&self.cfg);
        if self.mode() == "standalone" {
            return None;
        }
        let peer_state = match (self.leader, self.role) {
            (0, _) => "looking",
            (_, StateRole::Leader) => "leading - broadcast",
            _ if learners.contains(&self.my_id) => "observing - broadcast",
            _ => "following - broadcast",
        };
        let leader = self.leading.as_ref().filter(|_| self.role == StateRole::Leader).map(|l| {
            let recent = self.now.mono_ms - ELECTION_TICKS as i64 * RAFT_TICK_MS;
            let heard = |id: &u64| *id != self.my_id && self.heard_from.get(id).is_some_and(|&at| at >= recent);
            let synced = |id: &u64| heard(id) && self.raft.raft.prs().get(*id).is_some_and(|p| p.state == ProgressState::Replicate);
            LeaderReport {
                learners: voters.iter().chain(&learners).filter(|id| heard(id)).count(),
                synced_followers: voters.iter().filter(|id| synced(id)).count(),
                synced_observers: learners.iter().filter(|id| synced(id)).count(),
                pending_syncs: self.raft.raft.pending_read_count(),
                uptime_ms: (self.now.mono_ms - l.since_ms) as u64,
                last_proposal_size: l.last_proposal,
                min_proposal_size: l.min_proposal,
                max_proposal_size: l.max_proposal,
            }
        });
        Some(EnsembleReport { peer_state, quorum_size: voters.len(), leader_id: self.leader, leader })
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
            let ctx = PrepContext {
                session_id: 0,
                ids: &[],
                extended_types: self.cfg.extended_types,
                enforce_quota: self.cfg.enforce_quota,
                schemes: self.cfg.acl_schemes(),
            };
            let prepared = prep::prep(&self.tree, &self.outstanding, OpCode::DeleteContainer, &req, &ctx);
            self.propose(0, 0, prepared, None);
        }
        assert!(self.prepared.raw() - before.raw() <= per_run as i64, "the reaper deletes at most {per_run} nodes a run");
    }
}
