//! Micro-benchmarks of keeper's hot paths, with divan (`cargo bench`): each
//! prints the cost per operation. Run on a quiet machine; PERF.md quotes them.
//!
//! - jute: decoding requests, encoding replies;
//! - tree: applying create, setData and delete transactions at 10k and 1M nodes;
//! - log: appending records and syncing, by batch size;
//! - snapshot: writing and loading 100k and 1M nodes;
//! - sequencer: a batch of setData writes through the standalone sequencer
//!   (prep, raft, apply, release; persists complete at once);
//! - hop: a message from one glommio executor to another and back (the shard →
//!   broadcast → shard path every write takes).

use bytes::{Bytes, BytesMut};
use keeper::core::tree::{DataTree, open_acl};
use keeper::core::txn::{NodeKind, Txn, TxnBody, TxnOp};
use keeper::core::zxid::Zxid;
use keeper::proto::codes::OpCode;
use keeper::proto::encode;
use keeper::proto::records::Stat;
use keeper::proto::request::{CreateRequest, Request, decode};
use keeper::proto::response::{Response, write_response};
use std::sync::atomic::{AtomicI64, Ordering};

fn main() {
    divan::main();
}

fn frame_of(op: OpCode, req: &Request) -> Bytes {
    let mut out = BytesMut::new();
    encode::request(&mut out, 1, op, req);
    out.freeze().slice(4..)
}

#[divan::bench_group]
mod jute {
    use super::*;

    #[divan::bench]
    fn decode_get_data(b: divan::Bencher) {
        let frame = frame_of(OpCode::GetData, &Request::GetData { path: "/app/config/node-000123".into(), watch: true });
        b.bench(|| decode(divan::black_box(frame.clone())).unwrap());
    }

    #[divan::bench]
    fn decode_create_100_bytes(b: divan::Bencher) {
        let req =
            Request::Create(CreateRequest { path: "/app/locks/lock-".into(), data: Some(Bytes::from(vec![7u8; 100])), acl: open_acl(), flags: 3, ttl: 0 });
        let frame = frame_of(OpCode::Create2, &req);
        b.bench(|| decode(divan::black_box(frame.clone())).unwrap());
    }

    #[divan::bench]
    fn encode_get_data_reply_100_bytes(b: divan::Bencher) {
        let resp = Ok(Response::GetData(Some(Bytes::from(vec![7u8; 100])), Stat::default()));
        let mut out = BytesMut::with_capacity(1 << 16);
        b.bench_local(|| {
            out.clear();
            write_response(&mut out, 5, 99, divan::black_box(&resp));
        });
    }
}

/// A tree of `n` nodes under /b (100 bytes each).
fn tree_of(n: usize) -> (DataTree, i64) {
    let mut tree = DataTree::new();
    let mut zxid = 1;
    tree.apply(&txn(zxid, TxnOp::Create { path: "/b".into(), data: None, acl: open_acl(), kind: NodeKind::Persistent }));
    for i in 0..n {
        zxid += 1;
        tree.apply(&txn(
            zxid,
            TxnOp::Create { path: format!("/b/n{i}"), data: Some(Bytes::from(vec![1u8; 100])), acl: open_acl(), kind: NodeKind::Persistent },
        ));
    }
    (tree, zxid)
}

fn txn(zxid: i64, op: TxnOp) -> Txn {
    Txn { zxid: Zxid::from_raw(zxid), time_ms: 0, session_id: 1, cxid: 1, body: TxnBody::Single(op) }
}

/// The tree: applying a transaction (the broadcast core's work for it; the
/// other cores only install its changes).
#[divan::bench_group(sample_count = 20)]
mod tree {
    use super::*;

    #[divan::bench(args = [10_000, 1_000_000])]
    fn apply_set_data(b: divan::Bencher, n: usize) {
        let (mut tree, z) = tree_of(n);
        let zxid = AtomicI64::new(z);
        let data = Some(Bytes::from(vec![2u8; 100]));
        let mut i = 0usize;
        b.bench_local(|| {
            i = (i + 7919) % n;
            let t = txn(zxid.fetch_add(1, Ordering::Relaxed) + 1, TxnOp::SetData { path: format!("/b/n{i}"), data: data.clone(), version: 1 });
            tree.apply(&t)
        });
    }

    #[divan::bench(args = [10_000, 1_000_000])]
    fn apply_create_then_delete(b: divan::Bencher, n: usize) {
        let (mut tree, z) = tree_of(n);
        let mut zxid = z;
        b.bench_local(|| {
            zxid += 1;
            tree.apply(&txn(
                zxid,
                TxnOp::Create { path: "/b/extra".into(), data: Some(Bytes::from_static(b"x")), acl: open_acl(), kind: NodeKind::Persistent },
            ));
            zxid += 1;
            tree.apply(&txn(zxid, TxnOp::Delete { path: "/b/extra".into() }))
        });
    }
}

#[divan::bench_group(sample_count = 20)]
mod log {
    use super::*;
    use keeper::storage::log::{Log, TxnLog};

    /// Appends `batch` 100-byte creates, then syncs once: cost per batch.
    #[divan::bench(args = [1, 16, 128])]
    fn append_and_sync(b: divan::Bencher, batch: usize) {
        let dir = std::env::temp_dir().join(format!("keeper-bench-log-{}-{batch}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut log, _) = TxnLog::open(&dir, 64 << 20, 0, true, |_| {}).unwrap();
        let mut index = 0u64;
        b.counter(divan::counter::ItemsCount::new(batch)).bench_local(|| {
            for _ in 0..batch {
                index += 1;
                let create = txn(
                    index as i64,
                    TxnOp::Create { path: format!("/b/n{index}"), data: Some(Bytes::from(vec![1u8; 100])), acl: open_acl(), kind: NodeKind::Persistent },
                );
                log.append(&raft::prelude::Entry { index, term: 1, data: create.to_bytes().into(), ..Default::default() });
            }
            log.persist_blocking(None).unwrap();
        });
        drop(log);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[divan::bench_group(sample_count = 3)]
mod snapshot {
    use super::*;
    use keeper::storage::snapshot;

    #[divan::bench(args = [100_000, 1_000_000])]
    fn write(b: divan::Bencher, n: usize) {
        let (tree, _) = tree_of(n);
        let dir = std::env::temp_dir().join(format!("keeper-bench-snap-w-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        b.counter(divan::counter::ItemsCount::new(n)).bench_local(|| snapshot::write(&tree, Default::default(), &dir).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[divan::bench(args = [100_000, 1_000_000])]
    fn load(b: divan::Bencher, n: usize) {
        let (tree, _) = tree_of(n);
        let dir = std::env::temp_dir().join(format!("keeper-bench-snap-l-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = snapshot::write(&tree, Default::default(), &dir).unwrap();
        drop(tree);
        b.counter(divan::counter::ItemsCount::new(n)).bench_local(|| snapshot::load(&file).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[divan::bench_group(sample_count = 10)]
mod hop {
    use glommio::channels::shared_channel;
    use glommio::{LocalExecutorBuilder, Placement};

    /// Round trips between two executors (pinned to two CPUs when the
    /// machine has them): per round trip, two cross-core hops.
    #[divan::bench]
    fn cross_core_round_trip(b: divan::Bencher) {
        const TRIPS: usize = 10_000;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        b.counter(divan::counter::ItemsCount::new(TRIPS)).bench(|| {
            let (to_b, from_a) = shared_channel::new_bounded::<u64>(1024);
            let (to_a, from_b) = shared_channel::new_bounded::<u64>(1024);
            let echo = LocalExecutorBuilder::new(Placement::Fixed(1 % cpus))
                .spawn(move || async move {
                    let rx = from_a.connect().await;
                    let tx = to_a.connect().await;
                    while let Some(v) = rx.recv().await {
                        if tx.send(v).await.is_err() {
                            break;
                        }
                    }
                })
                .unwrap();
            LocalExecutorBuilder::new(Placement::Fixed(0))
                .spawn(move || async move {
                    let tx = to_b.connect().await;
                    let rx = from_b.connect().await;
                    for i in 0..TRIPS as u64 {
                        tx.send(i).await.unwrap();
                        assert_eq!(rx.recv().await, Some(i));
                    }
                })
                .unwrap()
                .join()
                .unwrap();
            echo.join().unwrap();
        });
    }
}

/// The broadcast core's logic, standalone: a batch of setData writes from
/// one shard, prepared, proposed to raft, persisted and released, as the
/// driver does it (no I/O: the persist completes at once).
#[divan::bench_group(sample_count = 20)]
mod sequencer {
    use super::*;
    use keeper::config::Config;
    use keeper::core::messages::{ConnectInfo, Entry, Origin, ToBroadcast};
    use keeper::core::sequencer::{Clock, Recovered, Sequencer};
    use std::sync::Arc;

    const NOW: Clock = Clock { mono_ms: 0, wall_ms: 1_700_000_000_000 };

    /// Runs the sequencer's outputs as a driver whose persists finish at once; returns what it released.
    fn drive(seq: &mut Sequencer) -> Vec<Entry> {
        let mut released = Vec::new();
        loop {
            let mut ready = seq.ready();
            released.append(&mut ready.release);
            match ready.persist {
                Some(p) => seq.persisted(p.token),
                None if ready.is_empty() => return released,
                None => {}
            }
        }
    }

    fn standalone() -> (Sequencer, i64) {
        let cfg = Arc::new(Config { my_id: 1, ..Config::default() });
        let recovered = Recovered { tree: DataTree::new(), base: Default::default(), entries: Vec::new(), applied: 0, hard_state: Default::default() };
        let mut seq = Sequencer::new(cfg, recovered, 1, NOW);
        drive(&mut seq);
        let info = ConnectInfo { session_id: 0, passwd: Bytes::new(), timeout_ms: 30_000, last_zxid_seen: 0 };
        seq.on_message(ToBroadcast::Connect { origin: Origin { shard: 0, conn: 1 }, info }, NOW);
        let session = drive(&mut seq)
            .iter()
            .find_map(|e| match e {
                Entry::Txn { txn, .. } => Some(txn.session_id),
                _ => None,
            })
            .expect("the session was created");
        let create = Request::Create(CreateRequest { path: "/n".into(), data: None, acl: open_acl(), flags: 0, ttl: 0 });
        seq.on_message(
            ToBroadcast::Write {
                origin: Origin { shard: 0, conn: 1 },
                session_id: session,
                cxid: 1,
                op: OpCode::Create,
                req: create,
                ids: Arc::from(Vec::new()),
            },
            NOW,
        );
        drive(&mut seq);
        (seq, session)
    }

    #[divan::bench(args = [1, 16])]
    fn set_data_batch(b: divan::Bencher, batch: usize) {
        let (mut seq, session) = standalone();
        let mut cxid = 1;
        b.counter(divan::counter::ItemsCount::new(batch)).bench_local(|| {
            for _ in 0..batch {
                cxid += 1;
                let req = Request::SetData { path: "/n".into(), data: Some(Bytes::from_static(&[7; 100])), version: -1 };
                seq.on_message(
                    ToBroadcast::Write {
                        origin: Origin { shard: 0, conn: 1 },
                        session_id: session,
                        cxid,
                        op: OpCode::SetData,
                        req,
                        ids: Arc::from(Vec::new()),
                    },
                    NOW,
                );
            }
            let released = drive(&mut seq);
            assert_eq!(released.len(), batch, "every write was released");
        });
    }
}
