//! Overload held, against a real `keeper serve`: thousands of sessions
//! pipelining writes past the server's capacity, and a storm of new
//! connections past the connection throttle. Resident memory stays under a
//! documented bound, outstanding requests under globalOutstandingLimit, a
//! control client's requests keep being answered (its p99 is printed, not
//! asserted: PERF.md quotes it), and no acknowledged write is lost.

mod common;

use common::raw::RawClient;
use common::{Keeper, four_letter};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The resident memory a flooded server must stay under (README, "Overload").
const RSS_BOUND_MIB: u64 = 256;
const LIMIT: u64 = 500;
const FLOOD_THREADS: usize = 8;
const SESSIONS_PER_THREAD: usize = 250;
const PIPELINE: usize = 20;

fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()).unwrap_or(0) / 1024
}

fn mntr_value(port: u16, key: &str) -> Option<u64> {
    four_letter(port, "mntr").lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
}

/// A client that sets and reads one node, one request at a time, until
/// `stop`; every request must be answered. Its latencies, in µs.
fn control_client(k: &Keeper, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u64>> {
    let addr = k.addr();
    std::thread::spawn(move || {
        let mut c = RawClient::connect(addr);
        assert_eq!(c.create("/control", b"0", 0), Some(0));
        let mut latencies = Vec::new();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let t = Instant::now();
            let (reply, _) = c.call(5, |w| {
                w.ustring("/control").buffer(Some(n.to_string().as_bytes())).int(-1);
            });
            assert_eq!(reply.header.err, 0, "the control client's set {n} failed");
            assert_eq!(c.get("/control").as_deref(), Some(n.to_string().as_bytes()), "the control client reads its own write");
            latencies.push(t.elapsed().as_micros() as u64);
        }
        latencies
    })
}

fn p99(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() * 99 / 100).copied().unwrap_or(0)
}

/// Samples the server's memory and outstanding requests until `stop`; the maxima.
fn monitor(k: &Keeper, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, u64)> {
    let (pid, port) = (k.pid(), k.port);
    std::thread::spawn(move || {
        let (mut rss, mut outstanding) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            rss = rss.max(rss_mib(pid));
            outstanding = outstanding.max(mntr_value(port, "zk_outstanding_requests").unwrap_or(0));
            std::thread::sleep(Duration::from_millis(20));
        }
        (rss, outstanding)
    })
}

#[test]
fn a_write_flood_is_held_to_the_outstanding_limit_and_the_control_client_is_served() {
    let k = Keeper::start_with("flood", &format!("globalOutstandingLimit={LIMIT}\nmaxClientCnxns=0"), 1);
    RawClient::connect(k.addr()).create("/flood", b"", 0);
    let stop = Arc::new(AtomicBool::new(false));
    let (control, watch) = (control_client(&k, stop.clone()), monitor(&k, stop.clone()));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let flooders: Vec<_> = (0..FLOOD_THREADS)
        .map(|t| {
            let (addr, acked) = (k.addr(), acked.clone());
            std::thread::spawn(move || {
                let mut sessions: Vec<RawClient> = (0..SESSIONS_PER_THREAD).map(|_| RawClient::connect(addr)).collect();
                // Every session sends its whole pipeline before any reply is read.
                let mut sent = Vec::new();
                for (s, c) in sessions.iter_mut().enumerate() {
                    for i in 0..PIPELINE {
                        let path = format!("/flood/t{t}-s{s}-{i}");
                        let xid = c.send(1, |w| {
                            w.ustring(&path).buffer(Some(&[7u8; 100])).count(1).int(31).ustring("world").ustring("anyone").int(0);
                        });
                        sent.push((s, xid, path));
                    }
                }
                let mut mine = Vec::new();
                for (s, xid, path) in sent {
                    let reply = sessions[s].read().unwrap_or_else(|| panic!("session {s} of thread {t}: no reply to xid {xid}"));
                    assert_eq!(reply.header.xid, xid, "replies come in order");
                    assert_eq!(reply.header.err, 0, "create {path}");
                    mine.push(path);
                }
                acked.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for f in flooders {
        f.join().expect("a flooding thread failed");
    }
    let flood_time = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let latencies = control.join().expect("the control client was answered throughout");
    let (max_rss, max_outstanding) = watch.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    let writes = FLOOD_THREADS * SESSIONS_PER_THREAD * PIPELINE;
    eprintln!(
        "flood: {} sessions pipelining {writes} creates in {:.1} s; server RSS at most {max_rss} MiB, outstanding at most {max_outstanding}; control client: {} requests, p99 {} µs",
        FLOOD_THREADS * SESSIONS_PER_THREAD,
        flood_time.as_secs_f64(),
        latencies.len(),
        p99(latencies.clone())
    );
    assert!(!latencies.is_empty(), "the control client completed requests during the flood");
    assert!(max_rss < RSS_BOUND_MIB, "resident memory reached {max_rss} MiB (bound {RSS_BOUND_MIB} MiB)");
    assert!(max_outstanding <= LIMIT, "{max_outstanding} requests were outstanding at once, past globalOutstandingLimit={LIMIT}");
    assert_eq!(acked.len(), writes, "every create was answered");
    // No acknowledged write is lost: every one is in the tree.
    let mut c = RawClient::connect(k.addr());
    let children: std::collections::HashSet<String> = c.children("/flood").into_iter().collect();
    let lost: Vec<&String> = acked.iter().filter(|p| !children.contains(p.trim_start_matches("/flood/"))).take(5).collect();
    assert!(lost.is_empty(), "acknowledged creates missing: {lost:?}");
}

#[test]
fn a_connection_storm_past_the_throttle_is_refused_and_the_control_client_is_served() {
    // 50 connections at once, then one per 10 ms.
    let k =
        Keeper::start_with("storm", "connection_throttle_tokens=50\nconnection_throttle_fill_time=10\nconnection_throttle_fill_count=1\nmaxClientCnxns=0", 1);
    let stop = Arc::new(AtomicBool::new(false));
    let (control, watch) = (control_client(&k, stop.clone()), monitor(&k, stop.clone()));
    let (served, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let storm: Vec<_> = (0..8)
        .map(|_| {
            let (addr, served, refused) = (k.addr(), served.clone(), refused.clone());
            std::thread::spawn(move || {
                let end = Instant::now() + Duration::from_secs(2);
                while Instant::now() < end {
                    match RawClient::try_connect(addr, 4000) {
                        Some(_) => served.fetch_add(1, Ordering::Relaxed),
                        None => refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for s in storm {
        s.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let latencies = control.join().expect("the control client was answered throughout");
    let (max_rss, _) = watch.join().unwrap();
    let (served, refused) = (served.load(Ordering::Relaxed), refused.load(Ordering::Relaxed));
    eprintln!("storm: {served} connections served, {refused} refused in 2 s; RSS at most {max_rss} MiB; control client p99 {} µs", p99(latencies.clone()));
    assert!(refused > 0, "the throttle refused connections past its rate");
    // 50 at once and 100 a second for 2 s (with slack for timing).
    assert!(served <= 50 + 2 * 100 + 50, "{served} connections got through a throttle of about 250");
    assert!(!latencies.is_empty(), "the control client completed requests during the storm");
    assert!(max_rss < RSS_BOUND_MIB, "resident memory reached {max_rss} MiB");
    assert!(k.log().contains("connection throttle: refused"), "the refusals are logged");
}
