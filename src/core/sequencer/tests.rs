//! The sequencer on logical time: no sockets, no sleeps, no files. The
//! test plays every driver of a whole ensemble: it feeds messages and ticks
//! with the time it chooses, keeps each server's appended entries as its
//! log, decides when persists complete, and carries (or drops) the
//! messages between servers.

use super::*;
use crate::core::messages::{AdminQuery, ConnectInfo};
use crate::core::tree::{Applied, OpResult, open_acl};
use crate::core::txn::{TxnBody, TxnOp};
use crate::proto::codes::{ErrorCode, OpCode};
use crate::proto::request::{CreateRequest, MultiOp, Request};
use std::collections::{BTreeMap, HashSet};

const TICK_MS: i64 = 2000;

fn config(my_id: u8, servers: usize, edit: &dyn Fn(&mut Config)) -> Arc<Config> {
    let servers = crate::config::ensemble::loopback_servers(servers);
    let mut cfg = Config {
        tick_ms: TICK_MS as u32,
        min_session_timeout_ms: 4000,
        max_session_timeout_ms: 40_000,
        extended_types: true,
        my_id,
        servers,
        ..Config::default()
    };
    edit(&mut cfg);
    Arc::new(cfg)
}

fn at(mono_ms: i64) -> Clock {
    Clock { mono_ms, wall_ms: 1_700_000_000_000 + mono_ms }
}

fn origin(conn: u64) -> Origin {
    Origin { shard: 0, conn }
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create(CreateRequest { path: path.into(), data: None, acl: open_acl(), flags, ttl: 0 })
}

/// One server and what its driver holds: its log and what it released.
struct Node {
    seq: Sequencer,
    log: Vec<RaftEntry>,
    /// The persist asked for and not yet completed.
    persisting: Option<Persist>,
    released: Vec<Entry>,
}

/// A whole ensemble on logical time.
struct Cluster {
    nodes: BTreeMap<u64, Node>,
    now: i64,
    /// Messages sent and not yet delivered: (from, to, message).
    wire: Vec<(u64, u64, PeerMessage)>,
    /// Servers cut off from every other (their messages are dropped both ways).
    isolated: HashSet<u64>,
    /// Whether persists complete as soon as they are asked for.
    auto_persist: bool,
    /// Snapshots sent to each server and not yet installed: what its driver received.
    received: BTreeMap<u64, (LogPosition, DataTree)>,
    /// Whether installs wait for [`Cluster::install`] (a slow load).
    hold_installs: bool,
    /// How far each server's wall clock is from the true time (ms; absent: 0).
    wall_offset: BTreeMap<u64, i64>,
}

impl Cluster {
    /// `n` servers (an ensemble of one when `n` is 0: a standalone server).
    fn new(n: usize, edit: &dyn Fn(&mut Config)) -> Cluster {
        let ids: Vec<u8> = if n == 0 { vec![1] } else { (1..=n as u8).collect() };
        let nodes = ids
            .into_iter()
            .map(|id| {
                let recovered =
                    Recovered { tree: DataTree::new(), base: LogPosition::default(), entries: Vec::new(), applied: 0, hard_state: HardState::default() };
                let seq = Sequencer::new(config(id, n, edit), recovered, 1, at(0));
                (id as u64, Node { seq, log: Vec::new(), persisting: None, released: Vec::new() })
            })
            .collect();
        Cluster {
            nodes,
            now: 0,
            wire: Vec::new(),
            isolated: HashSet::new(),
            auto_persist: true,
            received: BTreeMap::new(),
            hold_installs: false,
            wall_offset: BTreeMap::new(),
        }
    }

    /// The time as server `id` reads it.
    fn clock(&self, id: u64) -> Clock {
        let true_time = at(self.now);
        Clock { wall_ms: true_time.wall_ms + self.wall_offset.get(&id).copied().unwrap_or(0), ..true_time }
    }

    fn node(&mut self, id: u64) -> &mut Node {
        self.nodes.get_mut(&id).expect("a server of the ensemble")
    }

    /// Takes one server's Ready and does what its driver would.
    fn ready(&mut self, id: u64) -> Ready {
        let mut ready = self.node(id).seq.ready();
        if let Some(position) = ready.install_snapshot {
            assert_eq!(self.received[&id].0, position, "the snapshot's tree arrived before its message");
            if !self.hold_installs {
                self.install(id);
            }
        }
        for send in ready.send_snapshots.drain(..) {
            if !self.isolated.contains(&id) && !self.isolated.contains(&send.to) {
                self.received.insert(send.to, (send.position, send.tree));
                self.wire.push((id, send.to, send.message));
            }
            let sent = self.received.contains_key(&send.to);
            self.node(id).seq.snapshot_sent(send.to, sent);
        }
        let node = self.node(id);
        assert!(ready.fatal.is_none(), "{:?}", ready.fatal);
        if let Some(index) = ready.truncate_after {
            node.log.retain(|e| e.index <= index);
        }
        for e in &ready.append {
            assert_eq!(e.index, node.log.last().map_or(node.seq.raft.store().first() - 1, |l| l.index) + 1, "appends continue the log");
            node.log.push(e.clone());
        }
        if let Some(p) = ready.persist.clone() {
            assert!(node.persisting.is_none(), "one persist at a time");
            node.persisting = Some(p);
        }
        node.released.append(&mut ready.release);
        for (to, msg) in ready.peers.drain(..) {
            self.wire.push((id, to, msg));
        }
        ready
    }

    /// Server `id`'s driver has loaded the snapshot it received.
    fn install(&mut self, id: u64) {
        let (_, tree) = self.received.remove(&id).expect("a snapshot to install");
        let node = self.node(id);
        node.log.clear();
        node.seq.snapshot_installed(tree);
    }

    /// Completes a server's persist in flight.
    fn persist_done(&mut self, id: u64) -> bool {
        let node = self.node(id);
        let Some(p) = node.persisting.take() else { return false };
        node.seq.persisted(p.token);
        true
    }

    /// Runs every server until nothing moves: readies, persists (when
    /// automatic) and message delivery.
    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for &id in &ids {
                moved |= !self.ready(id).is_empty();
                // A driver persists an install only once the snapshot's tree is loaded.
                let loading = self.received.contains_key(&id) && self.nodes[&id].seq.installing.is_some();
                if self.auto_persist && !loading {
                    moved |= self.persist_done(id);
                }
            }
            for (from, to, msg) in std::mem::take(&mut self.wire) {
                moved = true;
                if !self.isolated.contains(&from) && !self.isolated.contains(&to) {
                    let now = self.clock(to);
                    self.node(to).seq.on_peer(from, msg, now);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the ensemble never settled");
    }

    /// Lets `ms` of time pass, tick by raft tick, settling after each.
    fn run_for(&mut self, ms: i64) {
        let end = self.now + ms;
        while self.now < end {
            self.now = (self.now + consensus::RAFT_TICK_MS).min(end);
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for id in ids {
                let now = self.clock(id);
                self.node(id).seq.tick(now);
            }
            self.settle();
        }
    }

    /// The server that leads and may prepare, after waiting for one (at most 5 s).
    fn leader(&mut self) -> u64 {
        for _ in 0..100 {
            let ready: Vec<u64> = self.nodes.iter().filter(|(id, n)| !self.isolated.contains(id) && n.seq.may_prepare()).map(|(id, _)| *id).collect();
            if let [one] = ready[..] {
                return one;
            }
            assert!(ready.len() < 2, "two leaders that may prepare: {ready:?}");
            self.run_for(consensus::RAFT_TICK_MS);
        }
        panic!("no leader within 5 s");
    }

    fn send(&mut self, id: u64, msg: ToBroadcast) {
        let now = self.clock(id);
        self.node(id).seq.on_message(msg, now);
    }

    /// Opens a session through server `id` (connection `conn`) and commits it; returns its id.
    fn session(&mut self, id: u64, conn: u64) -> i64 {
        let info = ConnectInfo { session_id: 0, passwd: bytes::Bytes::new(), timeout_ms: 4000, last_zxid_seen: 0 };
        self.send(id, ToBroadcast::Connect { origin: origin(conn), info });
        self.settle();
        let found = self.node(id).released.iter().rev().find_map(|e| match e {
            Entry::Txn { txn, origin: Some(o), .. } if o.conn == conn && matches!(txn.body, TxnBody::CreateSession { .. }) => Some(txn.session_id),
            _ => None,
        });
        found.expect("the createSession was released to the connecting server with its origin")
    }

    fn write(&mut self, id: u64, session_id: i64, cxid: i32, op: OpCode, req: Request) {
        self.send(id, ToBroadcast::Write { origin: origin(1), session_id, cxid, op, req, ids: Arc::from(Vec::new()) });
    }

    fn create(&mut self, id: u64, session_id: i64, cxid: i32, path: &str, flags: i32) {
        self.write(id, session_id, cxid, OpCode::Create, create(path, flags));
    }

    /// What server `id` released since the last call.
    fn take_released(&mut self, id: u64) -> Vec<Entry> {
        std::mem::take(&mut self.node(id).released)
    }
}

/// Creates `/n{round}-{i}` through `leader` in settled batches of 100 (cxids
/// 1..=count, `count` a multiple of 100); returns `count`.
fn create_in_batches(c: &mut Cluster, leader: u64, session: i64, count: i32) -> i32 {
    assert_eq!(count % 100, 0, "whole batches");
    for round in 0..count / 100 {
        for i in 0..100 {
            c.create(leader, session, round * 100 + i + 1, &format!("/n{round}-{i}"), 0);
        }
        c.settle();
    }
    count
}

/// The single op result of each released transaction: (zxid, result).
fn results(entries: &[Entry]) -> Vec<(Zxid, OpResult)> {
    entries
        .iter()
        .filter_map(|e| match e {
            Entry::Txn { txn, effect, .. } => match &effect.applied {
                Applied::Single(r) => Some((txn.zxid, r.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn is_created(r: &OpResult) -> bool {
    matches!(r, OpResult::Created { .. })
}

/// A standalone server that leads, with a session open; persists are manual.
fn standalone(edit: &dyn Fn(&mut Config)) -> (Cluster, i64) {
    let mut c = Cluster::new(0, edit);
    assert_eq!(c.leader(), 1);
    let s = c.session(1, 1);
    c.take_released(1);
    c.auto_persist = false;
    (c, s)
}

#[test]
fn a_standalone_server_is_an_ensemble_of_one_that_leads_at_once() {
    let mut c = Cluster::new(0, &|_| {});
    c.settle();
    assert!(c.node(1).seq.may_prepare(), "the only voter leads without waiting for a timeout");
    assert_eq!(c.node(1).seq.mode(), "standalone");
    let s = c.session(1, 1);
    c.create(1, s, 1, "/a", 0);
    c.settle();
    let released = c.take_released(1);
    assert!(matches!(&results(&released)[..], [(z, r)] if is_created(r) && z.epoch() == 1), "{released:?}");
}

#[test]
fn group_commit_covers_everything_appended_before_it_and_batches_the_rest() {
    let (mut c, s) = standalone(&|_| {});
    for (i, p) in ["/a", "/b", "/c"].iter().enumerate() {
        c.create(1, s, i as i32, p, 0);
    }
    let first = c.ready(1);
    assert_eq!(first.append.len(), 3, "the three writes are appended together");
    assert!(first.persist.is_some(), "one persist for all three");
    assert!(first.release.is_empty(), "nothing is released before it is durable");
    c.create(1, s, 3, "/d", 0);
    c.create(1, s, 4, "/e", 0);
    let second = c.ready(1);
    assert_eq!(second.append.len(), 2);
    assert!(second.persist.is_none(), "no second persist while one is in flight");
    assert!(c.persist_done(1));
    let third = c.ready(1);
    assert!(third.persist.is_some(), "the next persist covers the writes appended meanwhile");
    let zxids: Vec<Zxid> = results(&c.take_released(1)).iter().map(|(z, _)| *z).collect();
    assert_eq!(zxids.len(), 3, "the first batch is released");
    assert!(zxids.windows(2).all(|w| w[1] == w[0].next()), "consecutive zxids: {zxids:?}");
    assert!(c.persist_done(1));
    c.ready(1);
    assert_eq!(results(&c.take_released(1)).len(), 2);
}

#[test]
fn writes_prepared_while_a_persist_runs_see_the_outstanding_ones() {
    let (mut c, s) = standalone(&|_| {});
    c.create(1, s, 1, "/a", 0);
    c.ready(1);
    assert!(c.node(1).persisting.is_some());
    // Pipelining: /a is not committed yet, but the next writes see it.
    c.create(1, s, 2, "/a/b", 0);
    c.create(1, s, 3, "/a", 0);
    c.write(1, s, 4, OpCode::SetData, Request::SetData { path: "/a".into(), data: None, version: 0 });
    assert!(c.node(1).seq.tree().get("/a").is_none(), "the committed tree has no /a while it is being logged");
    c.auto_persist = true;
    c.settle();
    let released = results(&c.take_released(1));
    assert_eq!(released.len(), 4);
    assert!(is_created(&released[0].1) && is_created(&released[1].1), "{released:?}");
    assert_eq!(released[2].1, OpResult::Error(ErrorCode::NodeExists.code()));
    assert!(matches!(released[3].1, OpResult::DataSet { stat } if stat.version == 1));
    assert!(c.node(1).seq.tree().get("/a/b").is_some());
    assert!(c.node(1).seq.outstanding.is_empty(), "everything committed: nothing outstanding");
}

#[test]
fn a_failed_write_takes_a_zxid_and_changes_nothing() {
    let (mut c, s) = standalone(&|_| {});
    c.auto_persist = true;
    c.write(1, s, 1, OpCode::SetData, Request::SetData { path: "/missing".into(), data: None, version: -1 });
    c.create(1, s, 2, "/after", 0);
    c.settle();
    let released = results(&c.take_released(1));
    assert_eq!(released[0].1, OpResult::Error(ErrorCode::NoNode.code()));
    assert_eq!(released[1].0, released[0].0.next(), "the next write takes the next zxid");
}

#[test]
fn a_multi_takes_one_zxid_and_fails_whole() {
    let (mut c, s) = standalone(&|_| {});
    c.auto_persist = true;
    let op = |path: &str| MultiOp::Create { op: OpCode::Create, req: CreateRequest { path: path.into(), data: None, acl: open_acl(), flags: 0, ttl: 0 } };
    c.write(1, s, 1, OpCode::Multi, Request::Multi(vec![op("/m1"), op("/m2")]));
    c.write(1, s, 2, OpCode::Multi, Request::Multi(vec![op("/m3"), op("/m1")]));
    c.create(1, s, 3, "/m3", 0);
    c.settle();
    let released = c.take_released(1);
    let applied: Vec<&Applied> = released.iter().filter_map(|e| if let Entry::Txn { effect, .. } = e { Some(&effect.applied) } else { None }).collect();
    assert!(matches!(applied[0], Applied::Multi(r) if r.len() == 2 && r.iter().all(is_created)));
    assert!(matches!(applied[1], Applied::Multi(r) if r == &vec![OpResult::Error(0), OpResult::Error(ErrorCode::NodeExists.code())]), "{:?}", applied[1]);
    assert!(matches!(applied[2], Applied::Single(r) if is_created(r)), "the failed multi's /m3 was never outstanding");
}

#[test]
fn sessions_expire_at_the_tick_their_timeout_ends_and_take_their_ephemerals() {
    let (mut c, s) = standalone(&|_| {});
    c.auto_persist = true;
    c.create(1, s, 1, "/eph", 1);
    c.settle();
    c.take_released(1);
    // Created at 50 ms (after the election) with a 4000 ms timeout: it
    // expires on the tick boundary after 4050, at 6000.
    c.run_for(5900);
    let early = c.take_released(1);
    assert!(early.is_empty(), "not yet at 5950 ms: {early:?}");
    c.run_for(50);
    match &c.take_released(1)[..] {
        [Entry::Txn { txn, effect, origin: None, .. }] => {
            assert_eq!((&txn.body, txn.session_id), (&TxnBody::CloseSession, s));
            assert_eq!(effect.changes.len(), 3, "the ephemeral, its parent, the session");
        }
        other => panic!("expected the expiry's closeSession, got {other:?}"),
    }
    assert!(c.node(1).seq.tree().get("/eph").is_none() && c.node(1).seq.tree().sessions().is_empty());
    // A touch keeps a session alive past its first deadline: created at
    // 6000 it would expire at 12000; touched at 9000, at 14000.
    let t = c.session(1, 2);
    c.take_released(1);
    c.run_for(3000);
    c.send(1, ToBroadcast::Touch(vec![t]));
    c.run_for(4000);
    assert!(c.take_released(1).is_empty(), "touched at 9000: alive at 13000");
    c.run_for(2000);
    assert_eq!(c.take_released(1).len(), 1);
}

#[test]
fn the_reaper_deletes_emptied_containers_and_expired_ttl_nodes_when_due() {
    let (mut c, s) = standalone(&|cfg| cfg.container_check_interval_ms = 100);
    c.auto_persist = true;
    c.write(1, s, 1, OpCode::CreateContainer, create("/c", 0));
    c.create(1, s, 2, "/c/x", 0);
    c.write(1, s, 3, OpCode::Delete, Request::Delete { path: "/c/x".into(), version: -1 });
    c.write(1, s, 4, OpCode::CreateContainer, create("/never-had-a-child", 0));
    c.write(1, s, 5, OpCode::CreateTtl, Request::Create(CreateRequest { path: "/t".into(), data: None, acl: open_acl(), flags: 5, ttl: 10 }));
    c.settle();
    assert!(results(&c.take_released(1)).iter().all(|(_, r)| !matches!(r, OpResult::Error(_))));
    c.run_for(150);
    let deleted: Vec<String> = c
        .take_released(1)
        .iter()
        .filter_map(|e| match e {
            Entry::Txn { txn, .. } => match &txn.body {
                TxnBody::Single(TxnOp::Delete { path }) => Some(path.clone()),
                other => panic!("{other:?}"),
            },
            _ => None,
        })
        .collect();
    assert_eq!(deleted, vec!["/c", "/t"], "the emptied container and the TTL node unmodified for over 10 ms");
    assert!(c.node(1).seq.tree().get("/never-had-a-child").is_some());
}

#[test]
fn dropping_the_outstanding_changes_leaves_prep_the_committed_tree() {
    let (mut c, s) = standalone(&|_| {});
    c.create(1, s, 1, "/x", 0);
    c.ready(1);
    c.node(1).seq.drop_outstanding();
    c.create(1, s, 3, "/x/child", 0);
    let (_, _, txn) = c.node(1).seq.proposed.back().expect("the child's create is proposed");
    assert!(matches!(txn.body, TxnBody::Single(TxnOp::Error { code }) if code == ErrorCode::NoNode.code()), "{txn:?}");
    assert!(c.node(1).seq.outstanding.is_empty(), "a failed prep adds nothing");
}

#[test]
fn handshakes_and_syncs_are_answered_in_order() {
    let (mut c, s) = standalone(&|_| {});
    c.auto_persist = true;
    c.send(1, ToBroadcast::Sync { origin: origin(1), cxid: 1, path: Some("/".into()) });
    c.settle();
    assert!(matches!(&c.take_released(1)[..], [Entry::Synced { cxid: 1, .. }]), "a sync on an idle leader is answered at once");
    // Re-attaching: the right password moves the session (evicting the old
    // connection), a wrong one is rejected, a client from the future refused.
    let attach = |passwd: Vec<u8>, last_zxid_seen| ConnectInfo { session_id: s, passwd: passwd.into(), timeout_ms: 4000, last_zxid_seen };
    c.send(1, ToBroadcast::Connect { origin: origin(7), info: attach(session::password(s).to_vec(), 0) });
    c.send(1, ToBroadcast::Connect { origin: origin(8), info: attach(vec![0; 16], 0) });
    c.send(1, ToBroadcast::Connect { origin: origin(9), info: attach(session::password(s).to_vec(), i64::MAX) });
    c.settle();
    let released = c.take_released(1);
    assert!(
        matches!(
            &released[..],
            [Entry::Evict { origin: o1 }, Entry::Attached { origin: o7, .. }, Entry::Evict { origin: o7b }, Entry::Rejected { origin: o8 }, Entry::Refused { origin: o9 }]
                if o1.conn == 1 && o7.conn == 7 && o7b.conn == 7 && o8.conn == 8 && o9.conn == 9
        ),
        "{released:?}"
    );
}

/// Found by a rolling restart: a client re-attached through a follower,
/// the leader then handed its leadership to that very follower, which got
/// its own handshake back and sent the answer to itself over a link that
/// does not exist; the client waited for its own timeout.
#[test]
fn a_reattach_pending_at_the_follower_that_takes_over_is_answered() {
    let mut c = Cluster::new(3, &|_| {});
    let leader = c.leader();
    let followers: Vec<u64> = c.nodes.keys().copied().filter(|id| *id != leader).collect();
    let s = c.session(followers[0], 10);
    for f in &followers {
        c.take_released(*f);
    }
    // The client re-attaches through each follower (connections 11 and
    // 12), and the forwarded handshakes are lost on the way (a link that
    // broke as they were sent); then the leader hands over. Whichever
    // follower takes over has its own handshake to answer.
    let info = ConnectInfo { session_id: s, passwd: session::password(s).to_vec().into(), timeout_ms: 4000, last_zxid_seen: 0 };
    for (i, f) in followers.iter().enumerate() {
        c.send(*f, ToBroadcast::Connect { origin: origin(11 + i as u64), info: info.clone() });
    }
    for f in &followers {
        c.ready(*f);
    }
    c.wire.retain(|(_, _, m)| !matches!(m, PeerMessage::Revalidate { .. }));
    let now = c.clock(leader);
    c.node(leader).seq.begin_stop(now);
    c.run_for(3000);
    let heir = c.leader();
    assert!(followers.contains(&heir), "a follower took over");
    for (i, f) in followers.iter().enumerate() {
        let released = c.take_released(*f);
        let conn = 11 + i as u64;
        assert!(
            released.iter().any(|e| matches!(e, Entry::Attached { origin: o, session_id, .. } if o.conn == conn && *session_id == s)),
            "server {f} (the heir: {}) answers its re-attach: {released:?}",
            *f == heir
        );
    }
}

#[test]
fn a_storage_failure_is_fatal_and_reports_are_gathered_from_every_shard() {
    let mut c = Cluster::new(0, &|_| {});
    let recovered = Recovered { tree: DataTree::new(), base: LogPosition::default(), entries: Vec::new(), applied: 0, hard_state: HardState::default() };
    c.node(1).seq = Sequencer::new(config(1, 0, &|_| {}), recovered, 2, at(0));
    c.send(1, ToBroadcast::Admin { origin: Origin { shard: 1, conn: 4 }, query: AdminQuery::Report });
    let asks = c.ready(1).messages;
    assert_eq!(asks.iter().map(|(shard, _)| *shard).collect::<Vec<_>>(), vec![0, 1]);
    let token = match &asks[0].1 {
        ToShard::AdminCollect { token, .. } => *token,
        other => panic!("{other:?}"),
    };
    c.send(1, ToBroadcast::AdminPart { token, part: Box::default() });
    assert!(c.ready(1).messages.is_empty(), "one part of two");
    c.now = 1500;
    c.send(1, ToBroadcast::AdminPart { token, part: Box::default() });
    match &c.ready(1).messages[..] {
        [(1, ToShard::AdminReply { conn: 4, report })] => assert_eq!((report.uptime_ms, report.shards.len(), report.mode), (1500, 2, "standalone")),
        other => panic!("{other:?}"),
    }
    c.node(1).seq.storage_failed("disk full".into());
    assert_eq!(c.node(1).seq.ready().fatal.as_deref(), Some("disk full"));
}

/// Every server's committed tree holds the same nodes.
fn assert_trees_agree(c: &mut Cluster) {
    let ids: Vec<u64> = c.nodes.keys().copied().collect();
    let reference = c.node(ids[0]).seq.tree().clone();
    for id in &ids[1..] {
        let tree = c.node(*id).seq.tree();
        assert_eq!(tree.last_zxid(), reference.last_zxid(), "server {id} applied as far");
        assert_eq!(tree.node_count(), reference.node_count());
        for (path, node) in reference.paths() {
            let other = tree.get(path).unwrap_or_else(|| panic!("{path} missing on server {id}"));
            assert_eq!((node.stat(), node.data()), (other.stat(), other.data()), "{path} on server {id}");
        }
    }
}

#[test]
fn three_servers_elect_a_leader_and_a_followers_write_commits_everywhere() {
    let mut c = Cluster::new(3, &|_| {});
    let leader = c.leader();
    let follower = if leader == 1 { 2 } else { 1 };
    assert_eq!(c.node(leader).seq.mode(), "leader");
    assert_eq!(c.node(follower).seq.mode(), "follower");
    let s = c.session(follower, 5);
    c.create(follower, s, 1, "/via-follower", 0);
    c.settle();
    for id in [1, 2, 3] {
        let released = c.take_released(id);
        let mine = released.iter().any(|e| matches!(e, Entry::Txn { txn, origin: Some(_), .. } if txn.cxid == 1 && txn.session_id == s));
        assert_eq!(mine, id == follower, "only the server the client is on replies (server {id})");
        assert!(results(&released).iter().any(|(_, r)| is_created(r)), "server {id} applied the create");
    }
    assert_trees_agree(&mut c);
}

#[test]
fn a_new_leader_takes_over_with_a_higher_epoch_and_the_old_one_catches_up() {
    let mut c = Cluster::new(3, &|_| {});
    let first = c.leader();
    let s = c.session(first, 1);
    c.create(first, s, 1, "/before", 0);
    c.settle();
    let before = c.node(first).seq.committed_zxid();
    // The leader is cut off; the others elect a new one within a second.
    c.isolated.insert(first);
    c.run_for(1200);
    let second = c.leader();
    assert_ne!(second, first);
    assert!(c.node(second).seq.tree().get("/before").is_some(), "nothing committed is lost");
    // The session lives on (the new leader re-armed it) and writes go on, in a later epoch.
    c.create(second, s, 2, "/after", 0);
    c.settle();
    let after = c.node(second).seq.committed_zxid();
    assert!(after.epoch() > before.epoch(), "{after} after {before}");
    // The old leader rejoins and catches up.
    c.isolated.clear();
    c.run_for(500);
    assert!(c.node(first).seq.tree().get("/after").is_some());
    assert_eq!(c.node(first).seq.mode(), "follower");
    assert_trees_agree(&mut c);
}

#[test]
fn only_the_leader_expires_sessions_and_their_ephemerals_go_everywhere() {
    let mut c = Cluster::new(3, &|_| {});
    let leader = c.leader();
    let follower = if leader == 3 { 2 } else { 3 };
    let s = c.session(follower, 9);
    c.create(follower, s, 1, "/eph", 1);
    c.settle();
    c.run_for(2000);
    assert!(c.nodes.values().all(|n| n.seq.tree().get("/eph").is_some()), "touched lately: alive");
    c.run_for(5000);
    for id in [1, 2, 3] {
        assert!(c.node(id).seq.tree().get("/eph").is_none(), "server {id} removed the expired session's ephemeral");
        assert!(c.node(id).seq.tree().sessions().is_empty());
    }
}

#[test]
fn a_write_through_a_server_the_session_left_gets_session_moved() {
    let mut c = Cluster::new(3, &|_| {});
    let leader = c.leader();
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let s = c.session(others[0], 1);
    let info = ConnectInfo { session_id: s, passwd: session::password(s).to_vec().into(), timeout_ms: 4000, last_zxid_seen: 0 };
    c.send(others[1], ToBroadcast::Connect { origin: origin(2), info });
    c.settle();
    assert!(c.take_released(others[1]).iter().any(|e| matches!(e, Entry::Attached { session_id, .. } if *session_id == s)));
    c.create(others[0], s, 7, "/stale", 0);
    c.settle();
    let on_old = results(&c.take_released(others[0]));
    assert!(on_old.iter().any(|(_, r)| *r == OpResult::Error(ErrorCode::SessionMoved.code())), "{on_old:?}");
}

#[test]
fn a_server_that_lost_its_data_listens_first_and_votes_only_for_a_candidate_as_far_as_it_has_seen() {
    let mut c = Cluster::new(3, &|_| {});
    let leader = c.leader();
    let s = c.session(leader, 1);
    for i in 0..20 {
        c.create(leader, s, i + 1, &format!("/n{i}"), 0);
    }
    c.settle();
    // A follower's data directory is wiped: it starts again with nothing.
    let wiped = if leader == 3 { 2 } else { 3 };
    let recovered = Recovered { tree: DataTree::new(), base: LogPosition::default(), entries: Vec::new(), applied: 0, hard_state: HardState::default() };
    let now = at(c.now);
    c.node(wiped).seq = Sequencer::new(config(wiped as u8, 3, &|_| {}), recovered, 1, now);
    c.node(wiped).log.clear();
    assert!(c.node(wiped).seq.catching_up);
    // Right after starting it grants no vote at all: it listens first.
    let vote = |index| Message { msg_type: MessageType::MsgRequestPreVote, from: leader, to: wiped, term: 9, index, log_term: 1, ..Default::default() };
    let answered = |c: &mut Cluster, index| {
        let now = at(c.now);
        c.node(wiped).seq.on_peer(leader, PeerMessage::Raft(Box::new(WireMessage::from(&vote(index)))), now);
        c.ready(wiped);
        // A follower's answers leave once what it must persist is durable.
        c.persist_done(wiped);
        c.ready(wiped);
        let wire = std::mem::take(&mut c.wire);
        wire.iter().any(|(from, _, msg)| {
            *from == wiped && matches!(msg, PeerMessage::Raft(m) if m.to_raft().unwrap().msg_type == MessageType::MsgRequestPreVoteResponse)
        })
    };
    assert!(!answered(&mut c, 30), "no vote while it listens");
    c.now += consensus::ELECTION_TICKS as i64 * consensus::RAFT_TICK_MS;
    // It has seen a heartbeat saying 21 entries are committed: a candidate with fewer gets no vote.
    let heartbeat = Message { msg_type: MessageType::MsgHeartbeat, from: leader, to: wiped, term: 1, commit: 21, ..Default::default() };
    let now = at(c.now);
    c.node(wiped).seq.on_peer(leader, PeerMessage::Raft(Box::new(WireMessage::from(&heartbeat))), now);
    assert!(!answered(&mut c, 5), "no vote for a candidate behind what it has seen");
    assert_eq!(c.node(wiped).seq.best_seen_index, 21);
    c.run_for(500);
    assert!(!c.node(wiped).seq.catching_up, "it caught up with the leader");
    assert_trees_agree(&mut c);
}

#[test]
fn a_follower_can_stand_for_election_after_its_store_was_compacted() {
    let mut c = Cluster::new(3, &|_| {});
    let leader = c.leader();
    let s = c.session(leader, 1);
    let writes = create_in_batches(&mut c, leader, s, crate::config::RETAINED_ENTRIES_DEFAULT as i32 + 200);
    for node in c.nodes.values() {
        assert!(node.seq.raft.store().first() > 1, "the store dropped entries it no longer needs");
    }
    // The leader is cut off: a follower whose store was compacted campaigns and leads.
    c.isolated.insert(leader);
    c.run_for(1500);
    let next = c.leader();
    assert_ne!(next, leader);
    c.create(next, s, writes + 1, "/after", 0);
    c.settle();
    assert!(c.node(next).seq.tree().get("/after").is_some());
}

#[test]
fn a_follower_further_behind_than_the_leader_keeps_catches_up_from_a_snapshot() {
    let mut c = Cluster::new(3, &|_| {});
    let leader = c.leader();
    let lagging = if leader == 3 { 2 } else { 3 };
    c.isolated.insert(lagging);
    let s = c.session(leader, 1);
    let writes = create_in_batches(&mut c, leader, s, crate::config::RETAINED_ENTRIES_DEFAULT as i32 + 300);
    assert!(c.node(leader).seq.raft.store().first() > 2, "the leader no longer keeps the entries the lagging server needs");
    c.isolated.clear();
    c.run_for(1000);
    assert!(c.node(lagging).seq.tree().get("/n0-0").is_some(), "the snapshot brought the early writes");
    c.create(leader, s, writes + 1, "/after", 0);
    c.settle();
    assert!(c.node(lagging).seq.tree().get("/after").is_some(), "and it follows the log from there");
    assert_trees_agree(&mut c);
}

#[test]
fn a_follower_that_restarts_empty_while_a_snapshot_is_on_its_way_is_probed_from_the_start() {
    let mut c = Cluster::new(3, &|_| {});
    let leader = c.leader();
    let lagging = if leader == 3 { 2 } else { 3 };
    let s = c.session(leader, 1);
    for i in 0..20 {
        c.create(leader, s, i + 1, &format!("/n{i}"), 0);
    }
    c.settle();
    // The leader is streaming a snapshot to `lagging` when that server comes back empty.
    let last = c.node(leader).seq.raft.raft.raft_log.last_index();
    c.node(leader).seq.raft.raft.mut_prs().get_mut(lagging).unwrap().become_snapshot(last);
    let recovered = Recovered { tree: DataTree::new(), base: LogPosition::default(), entries: Vec::new(), applied: 0, hard_state: HardState::default() };
    let now = at(c.now);
    c.node(lagging).seq = Sequencer::new(config(lagging as u8, 3, &|_| {}), recovered, 1, now);
    c.node(lagging).log.clear();
    c.node(leader).seq.on_peer(lagging, PeerMessage::StartedEmpty, now);
    let progress = c.node(leader).seq.raft.raft.prs().get(lagging).unwrap().clone();
    assert_eq!((progress.matched, progress.next_idx), (0, 1), "probed from the first entry");
    c.run_for(1000);
    assert!(!c.node(lagging).seq.catching_up, "it caught up with the leader");
    assert_trees_agree(&mut c);
}

#[test]
fn a_server_restarting_from_a_snapshot_newer_than_its_durable_commit_index_rejoins() {
    let mut c = Cluster::new(3, &|_| {});
    let leader = c.leader();
    let restarted = if leader == 3 { 2 } else { 3 };
    let s = c.session(leader, 1);
    for i in 0..20 {
        c.create(leader, s, i + 1, &format!("/n{i}"), 0);
    }
    c.settle();
    // It snapshotted what it applied, but the hard state it made durable
    // last says less was committed: that is how a crash can leave it.
    let node = &c.nodes[&restarted].seq;
    let applied = node.applied_index();
    let base = LogPosition { index: applied, term: node.raft.store().term(applied).unwrap() };
    let hard_state = HardState { commit: applied - 5, ..node.raft.store().hard_state().clone() };
    let recovered = Recovered { tree: node.tree().clone(), base, entries: Vec::new(), applied, hard_state };
    let now = at(c.now);
    c.node(restarted).seq = Sequencer::new(config(restarted as u8, 3, &|_| {}), recovered, 1, now);
    c.node(restarted).log.clear();
    c.create(leader, s, 21, "/after", 0);
    c.run_for(500);
    assert!(c.node(restarted).seq.tree().get("/after").is_some(), "it follows the log after its snapshot");
    assert_trees_agree(&mut c);
}

#[test]
fn a_follower_loading_a_snapshot_does_not_stand_for_election_until_it_is_in_place() {
    let mut c = Cluster::new(3, &|_| {});
    let leader = c.leader();
    let lagging = if leader == 3 { 2 } else { 3 };
    c.isolated.insert(lagging);
    let s = c.session(leader, 1);
    create_in_batches(&mut c, leader, s, crate::config::RETAINED_ENTRIES_DEFAULT as i32 + 300);
    c.hold_installs = true;
    c.isolated.clear();
    c.run_for(500);
    assert!(c.received.contains_key(&lagging) && c.node(lagging).seq.installing.is_some(), "the snapshot is loading");
    // The leader goes away while the load takes its time: the loading
    // server's clock stands still; the other one cannot win alone.
    c.isolated.insert(leader);
    c.run_for(2000);
    c.install(lagging);
    c.isolated.clear();
    c.run_for(2000);
    c.leader();
    assert!(c.node(lagging).seq.tree().get("/n0-0").is_some(), "the snapshot brought the early writes");
    assert_trees_agree(&mut c);
}

#[test]
fn followers_told_their_leaders_process_is_gone_elect_a_new_one_without_waiting_for_the_timeout() {
    let mut c = Cluster::new(3, &|_| {});
    let leader = c.leader();
    let s = c.session(leader, 1);
    c.create(leader, s, 1, "/before", 0);
    c.settle();
    c.isolated.insert(leader);
    let followers: Vec<u64> = c.nodes.keys().copied().filter(|&id| id != leader).collect();
    // One hears of it a tick before the other (their ticks are not in step
    // either: servers campaigning in the very same instant split the vote
    // and fall back to the timeout).
    for &id in &followers {
        let now = at(c.now);
        c.node(id).seq.peer_gone(leader, now);
        c.run_for(consensus::RAFT_TICK_MS);
    }
    // Well inside the shortest election timeout.
    c.run_for(consensus::RAFT_TICK_MS);
    let next: Vec<u64> = followers.iter().copied().filter(|&id| c.nodes[&id].seq.may_prepare()).collect();
    assert_eq!(next.len(), 1, "a new leader within three ticks, not after {} ms", consensus::ELECTION_TICKS as i64 * consensus::RAFT_TICK_MS);
    // A server told that some other server is gone does nothing.
    let other = followers.iter().copied().find(|&id| id != next[0]).unwrap();
    let now = at(c.now);
    c.node(next[0]).seq.peer_gone(other, now);
    c.settle();
    assert!(c.nodes[&next[0]].seq.may_prepare(), "the leader keeps leading");
}

/// Runs for up to `ms`, until server `id` changes its serve mode: when, and to what (None: no change).
fn run_watching_mode(c: &mut Cluster, id: u64, ms: i64) -> Option<(i64, ServeMode)> {
    let mode = c.nodes[&id].seq.serve_mode();
    let end = c.now + ms;
    while c.now < end {
        c.run_for(consensus::RAFT_TICK_MS);
        let now_mode = c.nodes[&id].seq.serve_mode();
        if now_mode != mode {
            return Some((c.now, now_mode));
        }
    }
    None
}

#[test]
fn a_server_cut_off_from_its_quorum_turns_read_only_after_the_delay_and_back_when_a_leader_returns() {
    let mut c = Cluster::new(3, &|cfg| {
        cfg.read_only_mode = true;
        cfg.tick_ms = 3000;
    });
    let leader = c.leader();
    let follower = *c.nodes.keys().find(|&&id| id != leader).unwrap();
    assert_eq!(c.nodes[&follower].seq.serve_mode(), ServeMode::ReadWrite);
    c.isolated.insert(follower);
    // It loses its leader within an election timeout, keeps its clients for
    // LEADERLESS_GRACE_MS, then stops serving them.
    let (closed_at, mode) = run_watching_mode(&mut c, follower, 2000 + LEADERLESS_GRACE_MS).expect("the cut-off follower stops serving");
    assert_eq!(mode, ServeMode::Closed, "first it stops serving");
    // max(2000, tickTime) without a leader before read-only mode.
    let (ro_at, mode) = run_watching_mode(&mut c, follower, 4000).expect("then it turns read-only");
    assert_eq!(mode, ServeMode::ReadOnly);
    let after_closing = 3000 - LEADERLESS_GRACE_MS;
    assert!((ro_at - closed_at - after_closing).abs() <= consensus::RAFT_TICK_MS, "read-only {} ms after closing, not {after_closing}", ro_at - closed_at);
    assert_eq!(c.nodes[&follower].seq.mode(), "read-only");
    assert_eq!(c.nodes[&leader].seq.serve_mode(), ServeMode::ReadWrite, "the majority's leader serves on");
    c.isolated.remove(&follower);
    let (_, mode) = run_watching_mode(&mut c, follower, 3000).expect("it rejoins");
    assert_eq!(mode, ServeMode::ReadWrite);
    assert_eq!(c.nodes[&follower].seq.mode(), "follower");

    // Without readonlymode.enabled a cut-off server stays closed.
    let mut c = Cluster::new(3, &|_| {});
    let leader = c.leader();
    let follower = *c.nodes.keys().find(|&&id| id != leader).unwrap();
    c.isolated.insert(follower);
    run_watching_mode(&mut c, follower, 10_000);
    assert_eq!(c.nodes[&follower].seq.serve_mode(), ServeMode::Closed);
}

#[test]
fn a_jump_of_one_servers_wall_clock_changes_transaction_times_but_not_session_expiry() {
    let mut c = Cluster::new(3, &|_| {});
    let leader = c.leader();
    let follower = *c.nodes.keys().find(|&&id| id != leader).unwrap();
    let s = c.session(follower, 9);
    c.create(follower, s, 1, "/eph", 1);
    c.settle();
    let created_at = c.now;
    // The leader's wall clock jumps an hour ahead, then two hours back.
    for jump in [3_600_000, -7_200_000] {
        *c.wall_offset.entry(leader).or_default() += jump;
        c.run_for(1000);
        c.send(follower, ToBroadcast::Touch(vec![s]));
        c.run_for(1000);
        assert!(c.nodes.values().all(|n| n.seq.tree().get("/eph").is_some()), "a wall-clock jump of {jump:+} ms expires no session");
    }
    // Transactions carry the leader's (jumped) wall time.
    c.create(follower, s, 2, "/stamped", 0);
    c.settle();
    let mtime = c.node(follower).seq.tree().get("/stamped").expect("committed").persisted.mtime;
    assert_eq!(mtime, c.clock(leader).wall_ms, "the leader's wall clock stamps the transaction");
    // Untouched, the session expires by the monotonic clock: within a tick after its timeout ends.
    let touched_at = c.now;
    c.send(follower, ToBroadcast::Touch(vec![s]));
    c.run_for(3900);
    assert!(c.nodes.values().all(|n| n.seq.tree().get("/eph").is_some()), "alive before its timeout ends ({} ms after creation)", c.now - created_at);
    c.run_for(TICK_MS + 200);
    assert!(c.nodes.values().all(|n| n.seq.tree().get("/eph").is_none()), "gone within a tick after {} ms untouched", c.now - touched_at);
}
