//! Bad input never takes the server down: random bytes, truncated frames,
//! absurd lengths and unknown opcodes each affect only their own connection,
//! with the reply ZooKeeper gives, while other clients keep being served.
//! A storm of connecting clients finds room in the accept queue.

mod common;

use common::raw::{RawClient, connect_frame, frame, read_frame};
use common::{Keeper, four_letter};
use std::io::Write;
use std::net::TcpStream;

const CREATE: i32 = 1;
const GET_DATA: i32 = 4;
const CHECK: i32 = 13;
const PING: i32 = 11;

/// A healthy client can still create and read a node.
fn assert_serving(k: &Keeper, path: &str) {
    let mut c = RawClient::connect(k.addr());
    let (reply, _) = c.call(CREATE, |w| {
        w.ustring(path).buffer(Some(b"ok")).count(1).int(31).ustring("world").ustring("anyone").int(0);
    });
    assert_eq!(reply.header.err, 0, "create {path} on a healthy connection");
    let (reply, _) = c.call(GET_DATA, |w| {
        w.ustring(path).boolean(false);
    });
    assert_eq!(reply.header.err, 0);
    assert_eq!(&reply.body[4..6], b"ok");
}

#[test]
fn garbage_and_hostile_frames_only_close_their_own_connection() {
    let k = Keeper::start("garbage");
    let mut bystander = RawClient::connect(k.addr());
    // Random bytes instead of a handshake.
    let mut s = TcpStream::connect(k.addr()).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let junk: Vec<u8> = (0..4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let _ = s.write_all(&junk);
    drop(s);
    // A frame length of 2^31-1.
    let mut s = TcpStream::connect(k.addr()).unwrap();
    s.write_all(&i32::MAX.to_be_bytes()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    assert!(read_frame(&mut s).is_none(), "no reply to a 2^31-1 length, just a close");
    // A negative length.
    let mut s = TcpStream::connect(k.addr()).unwrap();
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(read_frame(&mut s).is_none());
    // A frame cut off mid-way, then the socket closes.
    let mut s = TcpStream::connect(k.addr()).unwrap();
    let hs = connect_frame(0, &[0; 16], 30_000, 0, true);
    s.write_all(&hs[..hs.len() - 7]).unwrap();
    drop(s);
    // A handshake that is a valid frame but too short to be a ConnectRequest.
    let mut s = TcpStream::connect(k.addr()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    s.write_all(&frame(|w| {
        w.int(0).long(0);
    }))
    .unwrap();
    assert!(read_frame(&mut s).is_none());
    assert_serving(&k, "/after-garbage");
    let (ping, _) = bystander.call(PING, |_| {});
    assert_eq!(ping.header.xid, -2, "ping replies use xid -2");
}

#[test]
fn unknown_opcode_and_lone_check_get_unimplemented_then_close() {
    let k = Keeper::start("unknown-op");
    for op in [999, CHECK, 0] {
        let mut c = RawClient::connect(k.addr());
        let xid = c.send(op, |w| {
            w.ustring("/").int(-1);
        });
        let reply = c.read().expect("an error reply before the close");
        assert_eq!((reply.header.xid, reply.header.zxid, reply.header.err), (xid, -1, -6), "op {op}");
        assert!(c.is_closed(), "op {op} closes the connection");
    }
    assert_serving(&k, "/after-unknown");
}

#[test]
fn truncated_body_gets_marshalling_error_and_connection_stays() {
    let k = Keeper::start("truncated-body");
    let mut c = RawClient::connect(k.addr());
    // A create whose ACL vector claims 5 entries but holds none.
    let (reply, _) = c.call(CREATE, |w| {
        w.ustring("/t").buffer(Some(b"x")).count(5);
    });
    assert_eq!(reply.header.err, -5, "MarshallingError");
    let (reply, _) = c.call(GET_DATA, |w| {
        w.ustring("/").boolean(false);
    });
    assert_eq!(reply.header.err, 0, "the connection still works");
}

#[test]
fn oversized_frame_closes_connection_but_session_survives() {
    let k = Keeper::start_with("oversized", "jute.maxbuffer=4096", 1);
    let mut c = RawClient::connect(k.addr());
    let big = vec![7u8; 5000];
    c.send(CREATE, |w| {
        w.ustring("/big").buffer(Some(&big)).count(1).int(31).ustring("world").ustring("anyone").int(0);
    });
    assert!(c.read().is_none() && c.is_closed(), "a frame over jute.maxbuffer closes the connection without a reply");
    let mut again = RawClient::attach(k.addr(), c.session_id, &c.passwd, 30_000).expect("the session survives");
    let (reply, _) = again.call(GET_DATA, |w| {
        w.ustring("/").boolean(false);
    });
    assert_eq!(reply.header.err, 0);
}

#[test]
fn handshake_with_and_without_read_only_byte() {
    let k = Keeper::start("handshake");
    for (read_only, len) in [(true, 37), (false, 36)] {
        let mut s = TcpStream::connect(k.addr()).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        s.write_all(&connect_frame(0, &[0; 16], 30_000, 0, read_only)).unwrap();
        let body = read_frame(&mut s).expect("connect response");
        assert_eq!(body.len(), len, "response length with readOnly byte sent: {read_only}");
    }
    // Timeouts are negotiated into [2, 20] ticks (tickTime=500).
    let low = RawClient::attach(k.addr(), 0, &[0; 16], 1).unwrap();
    assert_eq!(low.timeout_ms, 1000);
    let high = RawClient::attach(k.addr(), 0, &[0; 16], 1_000_000).unwrap();
    assert_eq!(high.timeout_ms, 10_000);
    // Session ids carry the server id (1 when standalone) in the high byte.
    assert_eq!(low.session_id >> 56, 1);
    // A wrong password is rejected with the all-zero response.
    assert!(RawClient::attach(k.addr(), low.session_id, &[1; 16], 30_000).is_none());
    // A client that has seen a newer zxid is closed without an answer.
    let mut s = TcpStream::connect(k.addr()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    s.write_all(&connect_frame(0, &[0; 16], 30_000, 1 << 40, true)).unwrap();
    assert!(read_frame(&mut s).is_none());
    assert!(four_letter(k.port, "ruok") == "imok");
}

/// Each shard's listening socket queues 4096 connections (or the kernel's
/// `net.core.somaxconn`, if lower), so that thousands of clients
/// reconnecting at once are not dropped and made to retry a second later.
#[test]
fn listen_backlog_holds_a_reconnect_storm() {
    let k = Keeper::start_with("backlog", "", 2);
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap().trim().parse().unwrap();
    let filter = format!("sport = :{}", k.addr().port());
    let out = std::process::Command::new("ss").args(["-Hltn", &filter]).output().expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    // For a listening socket, ss's third column (Send-Q) is its backlog.
    let backlogs: Vec<u32> = text.lines().map(|l| l.split_whitespace().nth(2).and_then(|c| c.parse().ok()).expect("an ss line")).collect();
    assert_eq!(backlogs.len(), 2, "one listening socket per shard: {text}");
    for backlog in backlogs {
        assert_eq!(backlog, somaxconn.min(4096), "{text}");
    }
}

#[test]
fn stmk_waits_for_its_mask_and_gtmk_reads_it_back() {
    use std::io::Read;
    let k = Keeper::start("trace-mask");
    assert_eq!(four_letter(k.port, "gtmk"), "306", "ZooKeeper's default mask");
    let mut s = std::net::TcpStream::connect(k.addr()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    // The word first, the mask a moment later: the server waits for all 12 bytes.
    s.write_all(b"stmk").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    s.write_all(&0x1F2i64.to_be_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "498");
    assert_eq!(four_letter(k.port, "gtmk"), "498");
}
