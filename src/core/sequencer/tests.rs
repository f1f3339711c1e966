//! The sequencer on logical time: no sockets, no sleeps, no files. The
//! test plays the driver: it feeds messages and ticks with the time it
//! chooses, keeps the appended records as its log, and says when a
//! persist completes.

use super::*;
use crate::core::messages::{AdminQuery, ConnectInfo};
use crate::core::tree::{Applied, OpResult, open_acl};
use crate::proto::codes::ErrorCode;
use crate::proto::request::{CreateRequest, MultiOp};

const TICK_MS: i64 = 2000;

fn config(edit: impl FnOnce(&mut Config)) -> Arc<Config> {
    let mut cfg = Config { tick_ms: TICK_MS as u32, min_session_timeout_ms: 4000, max_session_timeout_ms: 40_000, extended_types: true, ..Config::default() };
    edit(&mut cfg);
    Arc::new(cfg)
}

fn at(mono_ms: i64) -> Clock {
    Clock { mono_ms, wall_ms: 1_700_000_000_000 + mono_ms }
}

fn origin(conn: u64) -> Origin {
    Origin { shard: 0, conn }
}

/// A sequencer with the driver's side: the log it appended to and the time.
struct Harness {
    seq: Sequencer,
    log: Vec<LogRecord>,
    now: i64,
    /// The persist in flight, as the last `Ready` asked.
    persisting: Option<Zxid>,
}

impl Harness {
    fn new(cfg: Arc<Config>) -> Harness {
        Harness { seq: Sequencer::new(cfg, DataTree::new(), 1, at(0)), log: Vec::new(), now: 0, persisting: None }
    }

    /// Takes a Ready and does what a driver does with its append and persist.
    fn ready(&mut self) -> Ready {
        let ready = self.seq.ready();
        assert!(ready.fatal.is_none(), "{:?}", ready.fatal);
        for record in &ready.append {
            assert!(self.log.last().is_none_or(|last| last.zxid < record.zxid), "appends continue the log");
            self.log.push(record.clone());
        }
        if let Some(z) = ready.persist {
            assert!(self.persisting.is_none(), "one persist at a time");
            assert_eq!(z, self.log.last().expect("something to persist").zxid, "a persist reaches everything appended");
            self.persisting = Some(z);
        }
        ready
    }

    /// The persist in flight completes.
    fn persist_done(&mut self) {
        let z = self.persisting.take().expect("a persist in flight");
        self.seq.persisted(z);
    }

    fn send(&mut self, msg: ToBroadcast) {
        self.seq.on_message(msg, at(self.now));
    }

    /// Opens a session and commits it; returns its id.
    fn session(&mut self, conn: u64) -> i64 {
        let info = ConnectInfo { session_id: 0, passwd: bytes::Bytes::new(), timeout_ms: 4000, last_zxid_seen: 0 };
        self.send(ToBroadcast::Connect { origin: origin(conn), info });
        self.ready();
        self.persist_done();
        let ready = self.ready();
        match &ready.release[..] {
            [Entry::Txn { txn, .. }] if matches!(txn.body, TxnBody::CreateSession { .. }) => txn.session_id,
            other => panic!("expected the createSession, got {other:?}"),
        }
    }

    fn write(&mut self, session_id: i64, cxid: i32, op: OpCode, req: Request) {
        self.send(ToBroadcast::Write { origin: origin(1), session_id, cxid, op, req, ids: Arc::from(Vec::new()) });
    }

    fn create(&mut self, session_id: i64, cxid: i32, path: &str, flags: i32) {
        self.write(session_id, cxid, OpCode::Create, create(path, flags));
    }

    /// Persists what is appended and returns what gets released.
    fn commit(&mut self) -> Vec<Entry> {
        self.ready();
        if self.persisting.is_some() {
            self.persist_done();
        }
        self.ready().release
    }
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create(CreateRequest { path: path.into(), data: None, acl: open_acl(), flags, ttl: 0 })
}

/// The single op result of each released transaction.
fn results(entries: &[Entry]) -> Vec<(i64, OpResult)> {
    entries
        .iter()
        .filter_map(|e| match e {
            Entry::Txn { txn, effect, .. } => match &effect.applied {
                Applied::Single(r) => Some((txn.zxid.raw(), r.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn is_created(r: &OpResult) -> bool {
    matches!(r, OpResult::Created { .. })
}

#[test]
fn group_commit_covers_everything_appended_before_it_and_batches_the_rest() {
    let mut h = Harness::new(config(|_| {}));
    let s = h.session(1);
    for (i, p) in ["/a", "/b", "/c"].iter().enumerate() {
        h.create(s, i as i32, p, 0);
    }
    let first = h.ready();
    assert_eq!(first.append.len(), 3, "the three writes are appended together");
    assert_eq!(first.persist, Some(Zxid::from_raw(4)), "one persist for all three");
    assert!(first.release.is_empty(), "nothing is released before it is durable");
    h.create(s, 3, "/d", 0);
    h.create(s, 4, "/e", 0);
    let second = h.ready();
    assert_eq!(second.append.len(), 2);
    assert_eq!(second.persist, None, "no second persist while one is in flight");
    h.persist_done();
    let third = h.ready();
    assert_eq!(results(&third.release).iter().map(|(z, _)| *z).collect::<Vec<_>>(), vec![2, 3, 4], "the first batch is released in zxid order");
    assert_eq!(third.persist, Some(Zxid::from_raw(6)), "the next persist covers the writes appended meanwhile");
    h.persist_done();
    assert_eq!(results(&h.ready().release).len(), 2);
    assert_eq!(h.seq.committed_zxid(), Zxid::from_raw(6));
}

#[test]
fn writes_prepared_while_a_persist_runs_see_the_outstanding_ones() {
    let mut h = Harness::new(config(|_| {}));
    let s = h.session(1);
    h.create(s, 1, "/a", 0);
    h.ready();
    assert!(h.persisting.is_some());
    // Pipelining: /a is not committed yet, but the next writes see it.
    h.create(s, 2, "/a/b", 0);
    h.create(s, 3, "/a", 0);
    h.write(s, 4, OpCode::SetData, Request::SetData { path: "/a".into(), data: None, version: 0 });
    assert!(h.seq.tree().get("/a").is_none(), "the committed tree has no /a while it is being logged");
    let mut released = results(&h.commit());
    released.extend(results(&h.commit()));
    assert_eq!(released.len(), 4);
    assert!(is_created(&released[0].1) && is_created(&released[1].1), "{released:?}");
    assert_eq!(released[2].1, OpResult::Error(ErrorCode::NodeExists.code()));
    assert!(matches!(released[3].1, OpResult::DataSet { stat } if stat.version == 1));
    assert!(h.seq.tree().get("/a/b").is_some());
    assert!(h.seq.outstanding.is_empty(), "everything committed: nothing outstanding");
}

#[test]
fn a_failed_write_takes_a_zxid_and_changes_nothing() {
    let mut h = Harness::new(config(|_| {}));
    let s = h.session(1);
    h.write(s, 1, OpCode::SetData, Request::SetData { path: "/missing".into(), data: None, version: -1 });
    h.create(s, 2, "/after", 0);
    let released = results(&h.commit());
    assert_eq!(released[0], (2, OpResult::Error(ErrorCode::NoNode.code())), "the failure has zxid 2");
    assert_eq!(released[1].0, 3, "the next write takes the next zxid");
    assert_eq!(h.log.len(), 3, "the failed write is logged, as ZooKeeper logs it");
}

#[test]
fn a_multi_takes_one_zxid_and_fails_whole() {
    let mut h = Harness::new(config(|_| {}));
    let s = h.session(1);
    let op = |path: &str| MultiOp::Create { op: OpCode::Create, req: CreateRequest { path: path.into(), data: None, acl: open_acl(), flags: 0, ttl: 0 } };
    h.write(s, 1, OpCode::Multi, Request::Multi(vec![op("/m1"), op("/m2")]));
    h.write(s, 2, OpCode::Multi, Request::Multi(vec![op("/m3"), op("/m1")]));
    h.create(s, 3, "/m3", 0);
    let released = h.commit();
    let applied: Vec<&Applied> = released.iter().filter_map(|e| if let Entry::Txn { effect, .. } = e { Some(&effect.applied) } else { None }).collect();
    assert!(matches!(applied[0], Applied::Multi(r) if r.len() == 2 && r.iter().all(is_created)));
    assert!(matches!(applied[1], Applied::Multi(r) if r == &vec![OpResult::Error(0), OpResult::Error(ErrorCode::NodeExists.code())]), "{:?}", applied[1]);
    assert!(matches!(applied[2], Applied::Single(r) if is_created(r)), "the failed multi's /m3 was never outstanding");
    assert_eq!(h.log.len(), 4, "a createSession, then one zxid per multi and one for the create");
}

#[test]
fn sessions_expire_at_the_tick_their_timeout_ends_and_take_their_ephemerals() {
    let mut h = Harness::new(config(|_| {}));
    let s = h.session(1);
    h.create(s, 1, "/eph", 1);
    h.commit();
    // Touched at 0 with a 4000 ms timeout: it expires on the tick boundary after 4000.
    h.now = 5999;
    h.seq.tick(at(h.now));
    assert!(h.ready().append.is_empty(), "not yet at 5999 ms");
    h.now = 6000;
    h.seq.tick(at(h.now));
    let released = h.commit();
    match &released[..] {
        [Entry::Txn { txn, effect, origin: None }] => {
            assert_eq!((&txn.body, txn.session_id), (&TxnBody::CloseSession, s));
            assert_eq!(effect.changes.len(), 3, "the ephemeral, its parent, the session");
        }
        other => panic!("expected the expiry's closeSession, got {other:?}"),
    }
    assert!(h.seq.tree().get("/eph").is_none() && h.seq.tree().sessions().is_empty());
    // A touch keeps a session alive past its first deadline.
    let t = h.session(2);
    h.now = 7000;
    h.send(ToBroadcast::Touch(vec![t]));
    h.now = 10_000;
    h.seq.tick(at(h.now));
    assert!(h.ready().append.is_empty(), "touched at 7000: alive until 12000");
    h.now = 12_000;
    h.seq.tick(at(h.now));
    assert_eq!(h.ready().append.len(), 1);
}

#[test]
fn the_reaper_deletes_emptied_containers_and_expired_ttl_nodes_when_due() {
    let mut h = Harness::new(config(|c| c.container_check_interval_ms = 100));
    let s = h.session(1);
    h.write(s, 1, OpCode::CreateContainer, create("/c", 0));
    h.create(s, 2, "/c/x", 0);
    h.write(s, 3, OpCode::Delete, Request::Delete { path: "/c/x".into(), version: -1 });
    h.write(s, 4, OpCode::CreateContainer, create("/never-had-a-child", 0));
    h.write(s, 5, OpCode::CreateTtl, Request::Create(CreateRequest { path: "/t".into(), data: None, acl: open_acl(), flags: 5, ttl: 50 }));
    assert!(results(&h.commit()).iter().all(|(_, r)| !matches!(r, OpResult::Error(_))));
    h.now = 40;
    h.seq.tick(at(h.now));
    assert!(h.ready().append.is_empty(), "the reaper runs every 100 ms");
    h.now = 100;
    h.seq.tick(at(h.now));
    let reaped = h.commit();
    let deleted: Vec<&str> = reaped
        .iter()
        .filter_map(|e| if let Entry::Txn { txn, .. } = e { Some(txn) } else { None })
        .map(|t| match &t.body {
            TxnBody::Single(crate::core::txn::TxnOp::Delete { path }) => path.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(deleted, vec!["/c", "/t"], "the emptied container and the TTL node unmodified for over 50 ms");
    assert!(h.seq.tree().get("/never-had-a-child").is_some());
}

#[test]
fn dropping_the_outstanding_changes_leaves_prep_the_committed_tree() {
    let mut h = Harness::new(config(|_| {}));
    let s = h.session(1);
    h.create(s, 1, "/x", 0);
    h.ready();
    h.create(s, 2, "/x", 0);
    h.seq.drop_outstanding();
    h.create(s, 3, "/x/child", 0);
    h.ready();
    let Some(Pending::Txn { txn, .. }) = h.seq.pending.back() else { panic!("the child's create is pending") };
    assert!(matches!(txn.body, TxnBody::Single(crate::core::txn::TxnOp::Error { code }) if code == ErrorCode::NoNode.code()), "{txn:?}");
    assert!(h.seq.outstanding.is_empty(), "a failed prep adds nothing");
}

#[test]
fn replies_without_a_transaction_follow_the_writes_prepared_before_them() {
    let mut h = Harness::new(config(|_| {}));
    let s = h.session(1);
    h.send(ToBroadcast::Sync { origin: origin(1), cxid: 1, path: Some("/".into()) });
    assert!(matches!(&h.ready().release[..], [Entry::Synced { .. }]), "nothing pending: a sync is answered at once");
    h.create(s, 2, "/w", 0);
    h.send(ToBroadcast::Sync { origin: origin(1), cxid: 3, path: None });
    assert!(h.ready().release.is_empty(), "the sync waits for the write before it");
    h.persist_done();
    let released = h.ready().release;
    assert!(matches!(&released[..], [Entry::Txn { .. }, Entry::Synced { cxid: 3, .. }]), "{released:?}");
    // Re-attaching: the right password moves the session (evicting the old
    // connection), a wrong one is rejected, a client from the future refused.
    let attach = |passwd: Vec<u8>, last_zxid_seen| ConnectInfo { session_id: s, passwd: passwd.into(), timeout_ms: 4000, last_zxid_seen };
    h.send(ToBroadcast::Connect { origin: origin(7), info: attach(session::password(s).to_vec(), 0) });
    h.send(ToBroadcast::Connect { origin: origin(8), info: attach(vec![0; 16], 0) });
    h.send(ToBroadcast::Connect { origin: origin(9), info: attach(session::password(s).to_vec(), 99) });
    let released = h.ready().release;
    assert!(
        matches!(
            &released[..],
            [Entry::Evict { origin: o1 }, Entry::Attached { origin: o7, .. }, Entry::Evict { origin: o7b }, Entry::Rejected { origin: o8 }, Entry::Refused { origin: o9 }]
                if o1.conn == 1 && o7.conn == 7 && o7b.conn == 7 && o8.conn == 8 && o9.conn == 9
        ),
        "{released:?}"
    );
}

#[test]
fn a_storage_failure_is_fatal_and_reports_are_gathered_from_every_shard() {
    let mut h = Harness::new(config(|_| {}));
    h.seq = Sequencer::new(config(|_| {}), DataTree::new(), 2, at(0));
    h.send(ToBroadcast::Admin { origin: Origin { shard: 1, conn: 4 }, query: AdminQuery::Report });
    let asks = h.ready().messages;
    assert_eq!(asks.iter().map(|(shard, _)| *shard).collect::<Vec<_>>(), vec![0, 1]);
    let token = match &asks[0].1 {
        ToShard::AdminCollect { token, .. } => *token,
        other => panic!("{other:?}"),
    };
    h.send(ToBroadcast::AdminPart { token, part: ShardReport::default() });
    assert!(h.ready().messages.is_empty(), "one part of two");
    h.now = 1500;
    h.send(ToBroadcast::AdminPart { token, part: ShardReport::default() });
    match &h.ready().messages[..] {
        [(1, ToShard::AdminReply { conn: 4, report })] => assert_eq!((report.uptime_ms, report.shards.len()), (1500, 2)),
        other => panic!("{other:?}"),
    }
    h.seq.storage_failed("disk full".into());
    assert_eq!(h.seq.ready().fatal.as_deref(), Some("disk full"));
}
