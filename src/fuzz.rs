//! Fuzzing of every decoder that reads bytes keeper did not write itself
//! (test builds only; stable Rust, so no cargo-fuzz): seeded structured
//! generators make valid encodings with keeper's own encoders, seeded
//! mutations turn them hostile (bit flips, byte overwrites, cuts,
//! extensions, length fields set to extremes, splices of two inputs), and
//! each decoder must answer Ok or Err without panicking.
//!
//! Targets: a client's ConnectRequest and requests (jute); peer frames,
//! and the raft messages inside them converted to raft's types; log
//! records walked through a segment, and the transactions they hold
//! (rkyv); snapshot files (what the chunks a leader streams become); zoo.cfg;
//! Apache ZooKeeper's snapshots and logs (what `keeper import` reads).
//!
//! CI runs [`CI_CASES`] cases per target (snapshots a tenth, each is a file).
//! `KEEPER_FUZZ_CASES=N` runs N per target, `KEEPER_FUZZ_SEED=S` starts
//! from another seed. A failure names the target, the case's seed and its
//! input in hex.

use crate::config::Config;
use crate::core::consensus::frame::{self, Frame, Hello};
use crate::core::consensus::wire::WireMessage;
use crate::core::messages::PeerMessage;
use crate::core::tree::open_acl;
use crate::core::txn::{Txn, TxnBody, TxnOp};
use crate::core::zxid::Zxid;
use crate::proto::codes::OpCode;
use crate::proto::encode;
use crate::proto::frame::ConnectRequest;
use crate::proto::request::{self, CreateRequest, MultiOp, Request};
use crate::sim::rng::Rng;
use crate::storage::log::{entry_of_record, entry_payload_len, write_entry_payload};
use crate::storage::record::{self, Format, RecordAt, SegmentHeader};
use bytes::{Bytes, BytesMut};
use raft::prelude::{Entry, Message, MessageType};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Cases per target in CI.
const CI_CASES: u64 = 20_000;

fn cases() -> u64 {
    std::env::var("KEEPER_FUZZ_CASES").map_or(CI_CASES, |v| v.parse().expect("KEEPER_FUZZ_CASES is a number"))
}

fn first_seed() -> u64 {
    std::env::var("KEEPER_FUZZ_SEED").map_or(1, |v| v.parse().expect("KEEPER_FUZZ_SEED is a number"))
}

/// Mutates `input` a few times over.
fn mutate(rng: &mut Rng, mut input: Vec<u8>, other: &[u8]) -> Vec<u8> {
    for _ in 0..rng.range(1, 5) {
        let len = input.len() as u64;
        match rng.range(0, 7) {
            0 if len > 0 => {
                let at = rng.range(0, len) as usize;
                input[at] ^= 1 << rng.range(0, 8);
            }
            1 if len > 0 => {
                let at = rng.range(0, len) as usize;
                let random = rng.next_u64() as u8;
                input[at] = rng.pick(&[0, 1, 0x7f, 0x80, 0xff, random]);
            }
            2 if len > 0 => input.truncate(rng.range(0, len) as usize),
            3 => input.extend((0..rng.range(1, 64)).map(|_| rng.next_u64() as u8)),
            4 if len >= 4 => {
                // A length or count field set to an extreme.
                let at = rng.range(0, len - 3) as usize;
                let v: u32 = rng.pick(&[0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 1 << 20, 1 << 24]);
                let bytes = if rng.chance(500_000) { v.to_be_bytes() } else { v.to_le_bytes() };
                input[at..at + 4].copy_from_slice(&bytes);
            }
            5 if !other.is_empty() && len > 0 => {
                let at = rng.range(0, len) as usize;
                let from = rng.range(0, other.len() as u64) as usize;
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            _ if len > 1 => {
                let at = rng.range(0, len) as usize;
                input.remove(at);
            }
            _ => input.push(rng.next_u64() as u8),
        }
    }
    input
}

/// Runs `decode` on `cases()` mutations of `generate`d inputs; panics with
/// the failing case's seed and input if it panics.
fn fuzz(target: &str, cases: u64, generate: impl Fn(&mut Rng) -> Vec<u8>, decode: impl Fn(&[u8])) {
    let first = first_seed();
    for case in 0..cases {
        let seed = first.wrapping_mul(0x1_0000_0000).wrapping_add(case);
        let mut rng = Rng::new(seed);
        let (valid, other) = (generate(&mut rng), generate(&mut rng));
        // Valid inputs decode too; most cases are mutated.
        let input = if rng.chance(100_000) { valid } else { mutate(&mut rng, valid, &other) };
        if catch_unwind(AssertUnwindSafe(|| decode(&input))).is_err() {
            let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
            panic!(
                "{target}: case seed {seed} panicked on input {hex}\nreplay: KEEPER_FUZZ_SEED={first} KEEPER_FUZZ_CASES={} cargo nextest run --lib fuzz:: --no-capture",
                case + 1
            );
        }
    }
}

fn path(rng: &mut Rng) -> String {
    let depth = rng.range(1, 4);
    (0..depth).map(|_| format!("/{}", rng.pick(&["a", "node", "zookeeper", "x-0000000001", "é", ""]))).collect()
}

fn data(rng: &mut Rng) -> Option<Bytes> {
    rng.chance(900_000).then(|| Bytes::from((0..rng.range(0, 40)).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>()))
}

fn create(rng: &mut Rng) -> CreateRequest {
    CreateRequest { path: path(rng), data: data(rng), acl: open_acl(), flags: rng.range(0, 7) as i32, ttl: rng.range(0, 100_000) as i64 }
}

/// A valid client request frame body (the frame's length stripped).
fn client_request(rng: &mut Rng) -> Vec<u8> {
    let (op, req) = match rng.range(0, 11) {
        0 => (OpCode::Create, Request::Create(create(rng))),
        1 => (OpCode::CreateTtl, Request::Create(create(rng))),
        2 => (OpCode::Delete, Request::Delete { path: path(rng), version: -1 }),
        3 => (OpCode::SetData, Request::SetData { path: path(rng), data: data(rng), version: rng.range(0, 3) as i32 - 1 }),
        4 => (OpCode::GetData, Request::GetData { path: path(rng), watch: rng.chance(500_000) }),
        5 => (OpCode::GetChildren2, Request::GetChildren { path: path(rng), watch: false }),
        6 => (OpCode::Exists, Request::Exists { path: path(rng), watch: true }),
        7 => (OpCode::Sync, Request::Sync { path: Some(path(rng)) }),
        8 => (OpCode::SetAcl, Request::SetAcl { path: path(rng), acl: open_acl(), version: 0 }),
        9 => {
            let ops = (0..rng.range(0, 4))
                .map(|i| match i % 3 {
                    0 => MultiOp::Create { op: OpCode::Create, req: create(rng) },
                    1 => MultiOp::SetData { path: path(rng), data: data(rng), version: -1 },
                    _ => MultiOp::Check { path: path(rng), version: 0 },
                })
                .collect();
            (OpCode::Multi, Request::Multi(ops))
        }
        _ => (OpCode::Ping, Request::Ping),
    };
    let mut out = BytesMut::new();
    encode::request(&mut out, rng.range(0, 1000) as i32, op, &req);
    out[4..].to_vec()
}

fn connect_request(rng: &mut Rng) -> Vec<u8> {
    let mut out = BytesMut::new();
    let passwd: Vec<u8> = (0..16).map(|_| rng.next_u64() as u8).collect();
    encode::connect(&mut out, 0, rng.next_u64() as i64, &passwd, rng.range(0, 60_000) as i32);
    out[4..].to_vec()
}

fn txn(rng: &mut Rng) -> Txn {
    let body = match rng.range(0, 4) {
        0 => TxnBody::CreateSession { timeout_ms: 4000 },
        1 => TxnBody::CloseSession,
        2 => TxnBody::Single(TxnOp::SetData { path: path(rng), data: data(rng), version: 1 }),
        _ => TxnBody::Multi(vec![TxnOp::Delete { path: path(rng) }, TxnOp::Error { code: -101 }]),
    };
    Txn { zxid: Zxid::from_raw(rng.range(1, 1 << 40) as i64), time_ms: 1_700_000_000_000, session_id: rng.next_u64() as i64, cxid: 7, body }
}

/// A valid peer frame: a hello, a raft append with entries, or a forwarded write.
fn peer_frame(rng: &mut Rng) -> Vec<u8> {
    match rng.range(0, 3) {
        0 => frame::hello_frame(&Hello { server_id: rng.range(1, 6), ensemble: rng.next_u64() }),
        1 => {
            let mut m =
                Message { msg_type: MessageType::MsgAppend, to: 2, from: 1, term: 3, log_term: 3, index: rng.range(0, 100), commit: 5, ..Default::default() };
            let entries: Vec<Entry> =
                (0..rng.range(0, 3)).map(|i| Entry { index: 10 + i, term: 3, data: txn(rng).to_bytes().into(), ..Default::default() }).collect();
            m.set_entries(entries.into());
            frame::message_frame(&PeerMessage::Raft(Box::new(WireMessage::from(&m))))
        }
        _ => frame::message_frame(&PeerMessage::Forward {
            server: 2,
            session_id: 1,
            cxid: 2,
            op: OpCode::Create as i32,
            request: client_request(rng),
            ids: vec![("ip".into(), "127.0.0.1".into())],
            malformed: false,
        }),
    }
}

/// A valid log segment of a few records.
fn segment(rng: &mut Rng) -> Vec<u8> {
    let mut seg = vec![0u8; record::SEGMENT_HEADER_LEN];
    record::write_segment_header(&mut seg, SegmentHeader { format: Format::V2, first: 1, genesis: true });
    for index in 1..=rng.range(1, 4) {
        let entry = Entry { index, term: 1, data: txn(rng).to_bytes().into(), ..Default::default() };
        let mut payload = vec![0u8; entry_payload_len(&entry)];
        write_entry_payload(&entry, &mut payload);
        let at = seg.len();
        seg.resize(at + Format::V2.record_len(payload.len()), 0);
        record::write_record(Format::V2, &mut seg[at..], index, 1, &payload);
    }
    seg
}

/// Walks a segment as recovery does, decoding each record's entry and transaction.
fn read_segment(seg: &[u8]) {
    let Some(header) = record::read_segment_header(seg) else { return };
    let mut off = header.format.header_len().max(record::SEGMENT_HEADER_LEN);
    while let RecordAt::Valid { key, term, payload, next } = record::read_record(header.format, seg, off) {
        assert!(next > off, "records move forward");
        if let Ok(entry) = entry_of_record(key, term, payload) {
            let _ = Txn::from_bytes(&entry.data);
        }
        off = next;
    }
}

#[test]
fn client_handshakes_and_requests() {
    fuzz("ConnectRequest", cases(), connect_request, |b| {
        let _ = ConnectRequest::read(Bytes::copy_from_slice(b));
    });
    fuzz("client request", cases(), client_request, |b| {
        let _ = request::decode(Bytes::copy_from_slice(b));
    });
}

/// Decodes a peer frame, and converts a raft message in it to raft's types.
fn decode_peer_frame(b: &[u8]) {
    if let Ok(Some((Frame::Message(PeerMessage::Raft(wire)), used))) = frame::decode(b) {
        assert!(used <= b.len(), "a frame uses at most what it was given");
        let _ = wire.to_raft();
    }
}

#[test]
fn peer_frames_and_raft_messages() {
    fuzz("peer frame", cases(), peer_frame, decode_peer_frame);
    // The payload mutated, then framed with a right checksum: what reaches rkyv's validation.
    let payload = |rng: &mut Rng| peer_frame(rng)[frame::FRAME_HEADER_LEN..].to_vec();
    fuzz("peer message payload", cases(), payload, |b| {
        if !b.is_empty() && b.len() <= frame::PEER_FRAME_BYTES_MAX {
            decode_peer_frame(&frame::encode(frame::KIND_MESSAGE, b));
        }
    });
}

#[test]
fn log_records_and_transactions() {
    fuzz("log segment", cases(), segment, read_segment);
    // A record's payload mutated, then written with a right checksum.
    fuzz(
        "log record payload",
        cases(),
        |rng| segment(rng)[record::SEGMENT_HEADER_LEN + Format::V2.header_len()..].to_vec(),
        |payload| {
            if payload.is_empty() {
                return;
            }
            let mut seg = vec![0u8; record::SEGMENT_HEADER_LEN + Format::V2.record_len(payload.len())];
            record::write_segment_header(&mut seg, SegmentHeader { format: Format::V2, first: 1, genesis: true });
            record::write_record(Format::V2, &mut seg[record::SEGMENT_HEADER_LEN..], 1, 1, payload);
            read_segment(&seg);
        },
    );
    fuzz(
        "transaction",
        cases(),
        |rng| txn(rng).to_bytes(),
        |b| {
            let _ = Txn::from_bytes(b);
        },
    );
}

#[test]
fn snapshot_files() {
    let dir = std::env::temp_dir().join(format!("keeper-fuzz-snap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut tree = crate::core::tree::DataTree::new();
    let mut rng = Rng::new(first_seed());
    for n in 1..=20 {
        let mut t = txn(&mut rng);
        t.zxid = Zxid::from_raw(n);
        t.body = TxnBody::Single(TxnOp::Create { path: format!("/n{n}"), data: data(&mut rng), acl: open_acl(), kind: crate::core::txn::NodeKind::Persistent });
        tree.apply(&t);
    }
    let file = crate::storage::snapshot::write(&tree, crate::core::consensus::LogPosition { index: 20, term: 1 }, &dir).unwrap();
    let valid = std::fs::read(&file.path).unwrap();
    fuzz(
        "snapshot file",
        cases() / 10,
        |_| valid.clone(),
        |b| {
            std::fs::write(&file.path, b).unwrap();
            let _ = crate::storage::snapshot::load(&file);
        },
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn zoo_cfg() {
    let valid = "tickTime=2000\ndataDir=/var/lib/keeper\nclientPort=2181\ninitLimit=10\nsyncLimit=5\nserver.1=h1:2888:3888\nserver.2=h2:2888:3888;2181\nserver.3=h3:2888:3888:observer;0.0.0.0:2181\nautopurge.snapRetainCount=3\n4lw.commands.whitelist=srvr,mntr\nmaxClientCnxns=60\n";
    fuzz(
        "zoo.cfg",
        cases(),
        |_| valid.as_bytes().to_vec(),
        |b| {
            let _ = Config::parse(&String::from_utf8_lossy(b));
        },
    );
}

#[test]
fn zookeeper_data_directories() {
    // A snapshot and the two logs after it, as ZooKeeper 3.8 wrote them
    // (their preallocated zeros cut off); `keeper import` reads such files.
    const FILES: [(&str, &[u8]); 3] = [
        ("snapshot.1d", include_bytes!("../tests/fixtures/zookeeper-3.8/version-2/snapshot.1d")),
        ("log.1", include_bytes!("../tests/fixtures/zookeeper-3.8/version-2/log.1")),
        ("log.1f", include_bytes!("../tests/fixtures/zookeeper-3.8/version-2/log.1f")),
    ];
    let dir = std::env::temp_dir().join(format!("keeper-fuzz-zk-{}", std::process::id()));
    let version_dir = dir.join("version-2");
    std::fs::create_dir_all(&version_dir).unwrap();
    let load = || crate::storage::zookeeper::load(&dir, &dir).map_err(|e| e.to_string()).and_then(|(tree, _)| tree.into_data_tree().map(|_| ()));
    for (name, valid) in FILES {
        for (other, bytes) in FILES {
            std::fs::write(version_dir.join(other), bytes).unwrap();
        }
        load().unwrap_or_else(|e| panic!("the untouched ZooKeeper files import: {e}"));
        fuzz(
            &format!("ZooKeeper's {name}"),
            cases() / 10,
            |_| valid.to_vec(),
            |b| {
                std::fs::write(version_dir.join(name), b).unwrap();
                let _ = load();
            },
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
