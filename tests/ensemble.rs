//! Replicated ensembles of real `keeper serve` processes on loopback, under
//! faults: the leader killed during writes, paused and resumed, a follower
//! wiped, two of five servers lost. After each, no acknowledged write is
//! lost, every server holds the same tree, the ephemerals of live sessions
//! survive and those of expired sessions vanish everywhere.

mod common;

use common::ensemble::{Ensemble, SETTLE};
use common::eventually;
use common::raw::RawClient;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Creates `/w/<tag>-<n>` through server `addr` until `stop`; records what was acknowledged.
fn writer(addr: std::net::SocketAddr, tag: String, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<String>>>) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(mut c) = RawClient::try_connect(addr, 10_000) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let _ = c.stream.set_read_timeout(Some(Duration::from_secs(3)));
        while !stop.load(Ordering::Relaxed) {
            let name = format!("{tag}-{n}");
            n += 1;
            match c.create(&format!("/w/{name}"), name.as_bytes(), 0) {
                Some(0) => acked.lock().unwrap().push(name),
                Some(_) => {}
                None => break,
            }
        }
    }
}

/// Starts a writer through every running server.
fn writers(e: &Ensemble, stop: &Arc<AtomicBool>, acked: &Arc<Mutex<Vec<String>>>) -> Vec<std::thread::JoinHandle<()>> {
    (0..e.servers.len())
        .filter(|&i| e.is_up(i))
        .map(|i| {
            let (addr, stop, acked) = (e.servers[i].addr(), stop.clone(), acked.clone());
            std::thread::spawn(move || writer(addr, format!("s{}", i + 1), stop, acked))
        })
        .collect()
}

/// A session on server `i`, waiting for it to serve (right after a fault
/// it may not know its leader yet).
fn connect(e: &Ensemble, i: usize) -> RawClient {
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(c) = RawClient::try_connect(e.servers[i].addr(), 10_000) {
            return c;
        }
        assert!(Instant::now() < deadline, "server {} serves within {SETTLE:?}; logs:\n{}", i + 1, e.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every running server holds every acknowledged write, the same children
/// of `/w` with the same data, and (`hash`) the same digest at the same zxid.
fn assert_agree(e: &Ensemble, acked: &[String]) {
    let up: Vec<usize> = (0..e.servers.len()).filter(|&i| e.is_up(i)).collect();
    // Every session first: opening one is a transaction, which would move the zxid under the digests.
    let mut clients: Vec<RawClient> = up.iter().map(|&i| connect(e, i)).collect();
    let mut views = Vec::new();
    for (c, &i) in clients.iter_mut().zip(&up) {
        c.sync("/w");
        let mut children = c.children("/w");
        children.sort();
        for name in acked {
            assert!(children.binary_search(name).is_ok(), "acknowledged {name} is missing on server {}", i + 1);
        }
        for name in children.iter().step_by(7) {
            assert_eq!(c.get(&format!("/w/{name}")).as_deref(), Some(name.as_bytes()), "{name} on server {}", i + 1);
        }
        views.push(children);
    }
    assert!(views.windows(2).all(|w| w[0] == w[1]), "servers disagree on /w");
    let hashes: Vec<String> = clients
        .iter_mut()
        .zip(&up)
        .map(|(c, &i)| {
            c.sync("/");
            common::four_letter(e.servers[i].client_port, "hash")
        })
        .collect();
    assert!(hashes[0].starts_with("0x"), "hash answers: {:?}", hashes[0]);
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "every server has the same digest at the same zxid: {hashes:?}");
}

/// Waits until `more` writes beyond those so far are acknowledged.
fn wait_for_writes(acked: &Arc<Mutex<Vec<String>>>, more: usize, e: &Ensemble) {
    let target = acked.lock().unwrap().len() + more;
    assert!(eventually(SETTLE, || acked.lock().unwrap().len() >= target), "{more} more writes acknowledged; logs:\n{}", e.logs());
}

fn setup(e: &Ensemble) {
    let mut c = connect(e, e.leader());
    assert_eq!(c.create("/w", b"", 0), Some(0));
}

#[test]
fn no_acknowledged_write_is_lost_when_the_leader_is_killed_during_writes() {
    let mut e = Ensemble::start("ens-kill", 3, "");
    setup(&e);
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
    let threads = writers(&e, &stop, &acked);
    wait_for_writes(&acked, 50, &e);
    let old = e.leader();
    let before = acked.lock().unwrap().len();
    let killed_at = Instant::now();
    e.kill(old);
    let new = e.leader();
    assert_ne!(new, old);
    // The followers saw the leader's process go (its peer port refuses
    // connections) and stood for election without waiting for the timeout.
    assert!(e.servers[new].log().contains(&format!("server {}'s peer port", old + 1)), "the new leader probed the old one; logs:\n{}", e.logs());
    assert!(eventually(SETTLE, || acked.lock().unwrap().len() > before + 50), "writes resumed after the kill; logs:\n{}", e.logs());
    let resumed = killed_at.elapsed();
    e.restart(old);
    wait_for_writes(&acked, 30, &e);
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > before, "writes were acknowledged around the kill");
    assert_agree(&e, &acked);
    eprintln!("{} writes acknowledged; 50 more within {resumed:?} of the kill", acked.len());
}

#[test]
fn a_paused_leader_is_replaced_and_catches_up_when_it_resumes() {
    let mut e = Ensemble::start("ens-pause", 3, "");
    setup(&e);
    let old = e.leader();
    e.signal(old, true);
    let new = e.leader();
    assert_ne!(new, old);
    let mut c = connect(&e, new);
    let acked: Vec<String> = (0..30).map(|n| format!("paused-{n}")).collect();
    for name in &acked {
        assert_eq!(c.create(&format!("/w/{name}"), name.as_bytes(), 0), Some(0));
    }
    e.signal(old, false);
    assert!(eventually(SETTLE, || e.servers[old].mode() == "follower"), "the old leader follows; log:\n{}", e.servers[old].log());
    assert_agree(&e, &acked);
}

#[test]
fn sessions_and_their_ephemerals_survive_a_fail_over_and_expired_ones_vanish_everywhere() {
    let mut e = Ensemble::start("ens-sessions", 3, "");
    setup(&e);
    let leader = e.leader();
    let followers = e.others(leader);
    let mut live = RawClient::try_connect(e.servers[followers[0]].addr(), 30_000).unwrap();
    assert_eq!(live.create("/w/live", b"l", 1), Some(0));
    let (session, passwd) = (live.session_id, live.passwd.clone());
    let mut dying = RawClient::try_connect(e.servers[followers[1]].addr(), 1_000).unwrap();
    assert_eq!(dying.create("/w/dying", b"d", 1), Some(0));
    drop(dying);
    e.kill(leader);
    e.leader();
    // The live session re-attaches to the other follower and keeps its ephemeral.
    drop(live);
    let mut back = RawClient::attach(e.servers[followers[1]].addr(), session, &passwd, 30_000).expect("the session survives the fail-over");
    assert_eq!(back.get("/w/live").as_deref(), Some(b"l".as_slice()));
    // The abandoned session expires, and its ephemeral goes on every server.
    for &i in &followers {
        let mut c = connect(&e, i);
        assert!(eventually(SETTLE, || c.get("/w/dying").is_none()), "server {} removed the expired session's ephemeral", i + 1);
        assert_eq!(c.get("/w/live").as_deref(), Some(b"l".as_slice()), "server {} kept the live session's ephemeral", i + 1);
    }
}

#[test]
fn a_follower_with_a_wiped_data_directory_rejoins_and_catches_up() {
    let mut e = Ensemble::start("ens-wipe", 3, "");
    setup(&e);
    let leader = e.leader();
    let mut c = connect(&e, leader);
    let acked: Vec<String> = (0..100).map(|n| format!("wipe-{n}")).collect();
    for name in &acked {
        assert_eq!(c.create(&format!("/w/{name}"), name.as_bytes(), 0), Some(0));
    }
    let follower = e.others(leader)[0];
    e.wipe_and_restart(follower);
    assert_agree(&e, &acked);
}

#[test]
fn five_servers_keep_serving_without_two_of_them() {
    let mut e = Ensemble::start("ens-five", 5, "");
    setup(&e);
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
    let leader = e.leader();
    let follower = e.others(leader)[0];
    let threads = writers(&e, &stop, &acked);
    wait_for_writes(&acked, 30, &e);
    e.kill(follower);
    e.kill(leader);
    let before = acked.lock().unwrap().len();
    e.leader();
    assert!(eventually(SETTLE, || acked.lock().unwrap().len() > before + 50), "writes go on with three of five; logs:\n{}", e.logs());
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_agree(&e, &acked.lock().unwrap());
}

#[test]
fn a_leader_cut_off_from_the_others_is_replaced_and_nothing_acknowledged_is_lost() {
    let mut e = Ensemble::start_proxied("ens-partition", 3, "");
    setup(&e);
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
    let threads = writers(&e, &stop, &acked);
    wait_for_writes(&acked, 30, &e);
    let old = e.leader();
    e.partition(old, true);
    let others = e.others(old);
    assert!(eventually(SETTLE, || others.iter().any(|&i| e.servers[i].mode() == "leader")), "the majority elects a leader; logs:\n{}", e.logs());
    let before = acked.lock().unwrap().len();
    assert!(eventually(SETTLE, || acked.lock().unwrap().len() > before + 50), "writes go on through the majority; logs:\n{}", e.logs());
    e.partition(old, false);
    assert!(eventually(SETTLE, || e.servers[old].mode() == "follower"), "the old leader rejoins as a follower; log:\n{}", e.servers[old].log());
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_agree(&e, &acked.lock().unwrap());
}

#[test]
fn an_observer_follows_serves_and_forwards_but_never_leads() {
    let mut e = Ensemble::start_with_observers("ens-observer", 3, 1, "");
    setup(&e);
    assert_eq!(e.servers[3].mode(), "observer");
    let mut c = connect(&e, 3);
    let acked: Vec<String> = (0..20).map(|n| format!("obs-{n}")).collect();
    for name in &acked {
        assert_eq!(c.create(&format!("/w/{name}"), name.as_bytes(), 0), Some(0), "a write through the observer commits");
    }
    // mntr: the leader sees two synced followers and one synced observer.
    let leader = e.leader();
    let mntr = |i: usize| common::four_letter(e.servers[i].client_port, "mntr");
    let synced = ["zk_learners\t3\n", "zk_synced_followers\t2\n", "zk_synced_observers\t1\n", "zk_quorum_size\t3\n", "zk_peer_state\tleading - broadcast\n"];
    assert!(eventually(SETTLE, || synced.iter().all(|row| mntr(leader).contains(row))), "leader's mntr:\n{}", mntr(leader));
    let sizes: Vec<i64> = ["last", "min", "max"]
        .iter()
        .map(|k| mntr(leader).lines().find_map(|l| l.strip_prefix(&format!("zk_{k}_proposal_size\t")).map(|v| v.parse().unwrap())).unwrap())
        .collect();
    assert!(sizes[1] > 0 && sizes[1] <= sizes[0] && sizes[0] <= sizes[2], "proposal sizes last/min/max: {sizes:?}");
    assert!(mntr(e.others(leader)[0]).contains("zk_peer_state\tfollowing - broadcast\n"));
    assert!(mntr(3).contains("zk_peer_state\tobserving - broadcast\n") && !mntr(3).contains("zk_learners"), "observer's mntr:\n{}", mntr(3));
    // Without its vote two of three participants still make a quorum; the observer never leads.
    e.kill(leader);
    let new = e.leader();
    assert!(new < 3, "a participant leads");
    assert_agree(&e, &acked);
}

#[test]
fn a_server_without_a_quorum_stops_serving_and_says_so() {
    let mut e = Ensemble::start("ens-no-quorum", 3, "");
    setup(&e);
    let leader = e.leader();
    let others = e.others(leader);
    let mut client = connect(&e, others[0]);
    e.kill(leader);
    e.kill(others[1]);
    let alone = others[0];
    let not_serving = || common::four_letter(e.servers[alone].client_port, "srvr").contains("not currently serving requests");
    assert!(eventually(SETTLE, not_serving), "srvr says so; log:\n{}", e.servers[alone].log());
    assert!(client.is_closed(), "its client connections are closed");
    assert!(RawClient::try_connect(e.servers[alone].addr(), 10_000).is_none(), "a new client gets no session");
    assert_eq!(common::four_letter(e.servers[alone].client_port, "ruok"), "imok");
    e.restart(others[1]);
    let mut back = connect(&e, alone);
    assert_eq!(back.create("/w/quorum-again", b"q", 0), Some(0));
}

/// How many fault events the soak runs: a few in CI, 300 with
/// `KEEPER_LONG_TESTS=1`, or `KEEPER_FAULT_EVENTS=N`.
fn fault_events() -> usize {
    if let Ok(n) = std::env::var("KEEPER_FAULT_EVENTS") {
        return n.parse().expect("KEEPER_FAULT_EVENTS is a number");
    }
    if std::env::var("KEEPER_LONG_TESTS").is_ok_and(|v| v == "1") { 300 } else { 8 }
}

#[test]
fn writes_survive_a_stream_of_seeded_faults() {
    let events = fault_events();
    let mut e = Ensemble::start_proxied("ens-soak", 3, "");
    setup(&e);
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
    let threads = writers(&e, &stop, &acked);
    let mut seed = common::test_seed("writes_survive_a_stream_of_seeded_faults", Some(0x9e37_79b9_7f4a_7c15));
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut counts = [0usize; 5];
    for _ in 0..events {
        let leader = e.leader();
        let victim = if next(2) == 0 { leader } else { e.others(leader)[next(2) as usize] };
        let kind = next(5) as usize;
        counts[kind] += 1;
        let hold = Duration::from_millis(100 + next(600));
        match kind {
            0 => {
                e.kill(victim);
                std::thread::sleep(hold);
                e.restart(victim);
            }
            1 => {
                e.signal(victim, true);
                std::thread::sleep(hold);
                e.signal(victim, false);
            }
            2 => {
                e.partition(victim, true);
                std::thread::sleep(hold);
                e.partition(victim, false);
            }
            3 if victim != leader => e.wipe_and_restart(victim),
            _ => std::thread::sleep(hold),
        }
        // The next fault waits until every server serves again.
        for i in 0..e.servers.len() {
            drop(connect(&e, i));
        }
    }
    wait_for_writes(&acked, 30, &e);
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    let acked = acked.lock().unwrap().clone();
    assert_agree(&e, &acked);
    eprintln!("{events} fault events (kill -9, pause, partition, wipe, none: {counts:?}); {} writes acknowledged, none lost", acked.len());
}

#[test]
fn a_follower_behind_what_the_leader_keeps_catches_up_from_a_streamed_snapshot() {
    // A short memory of entries, so that a few hundred writes outrun it.
    let mut e = Ensemble::start("ens-snapshot", 3, "keeper.retainedEntries=50\nsnapCount=100");
    setup(&e);
    let leader = e.leader();
    let behind = e.others(leader)[0];
    e.kill(behind);
    let mut c = connect(&e, leader);
    let acked: Vec<String> = (0..300).map(|n| format!("snap-{n}")).collect();
    for name in &acked {
        assert_eq!(c.create(&format!("/w/{name}"), name.as_bytes(), 0), Some(0));
    }
    drop(c);
    e.restart(behind);
    assert!(eventually(SETTLE, || e.servers[behind].log().contains("installed a snapshot")), "it took a snapshot; log:\n{}", e.servers[behind].log());
    assert_agree(&e, &acked);
}

/// Whether the server closes `stream` (EOF or reset) within 10 s.
fn closed_by_server(mut stream: std::net::TcpStream) -> bool {
    use std::io::Read;
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut,
        }
    }
}

#[test]
fn garbage_and_strangers_on_a_peer_port_close_only_their_own_link() {
    use keeper::core::consensus::frame::{self, Hello};
    use std::io::Write;
    let e = Ensemble::start("ens-garbage", 3, "");
    setup(&e);
    let leader = e.leader();
    let target = e.others(leader)[0];
    let ours = frame::ensemble_identity(&[(1, "participant"), (2, "participant"), (3, "participant")]);
    let another = frame::ensemble_identity(&[(1, "participant"), (2, "participant"), (3, "participant"), (4, "observer")]);
    let mut bad_checksum = frame::hello_frame(&Hello { server_id: 1, ensemble: ours });
    *bad_checksum.last_mut().unwrap() ^= 0xff;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bytes that are no frame", vec![0xAB; 4096]),
        ("a frame claiming 2 GiB", [&0x8000_0000u32.to_le_bytes()[..], &[0; 8]].concat()),
        ("a hello with a bad checksum", bad_checksum),
        ("a hello from another ensemble", frame::hello_frame(&Hello { server_id: 1, ensemble: another })),
        ("a hello from a server not in the configuration", frame::hello_frame(&Hello { server_id: 9, ensemble: ours })),
    ];
    for (case, bytes) in cases {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", e.servers[target].peer_port)).unwrap();
        stream.write_all(&bytes).unwrap();
        assert!(closed_by_server(stream), "{case}: the link is closed");
    }
    let log = e.servers[target].log();
    assert!(log.contains("closing the peer link:") && log.contains("refusing the peer link:"), "each is logged:\n{log}");
    // The ensemble goes on, with the target in it.
    let mut c = connect(&e, target);
    assert_eq!(c.create("/w/after-garbage", b"after-garbage", 0), Some(0));
    assert_eq!(e.servers[target].mode(), "follower");
    assert_agree(&e, &["after-garbage".to_string()]);
}

#[test]
fn a_follower_with_a_corrupt_record_in_its_log_refuses_to_start_and_names_file_and_offset() {
    let mut e = Ensemble::start("ens-corrupt", 3, "");
    setup(&e);
    let leader = e.leader();
    let follower = e.others(leader)[0];
    let mut c = connect(&e, leader);
    let acked: Vec<String> = (0..40).map(|n| format!("c-{n}")).collect();
    for name in &acked {
        assert_eq!(c.create(&format!("/w/{name}"), name.as_bytes(), 0), Some(0));
    }
    let mut f = connect(&e, follower);
    f.sync("/w");
    assert_eq!(f.children("/w").len(), acked.len(), "the follower has every write before it is stopped");
    drop(f);
    e.kill(follower);
    let segment = common::log_segments(&e.servers[follower].dir.join("data/keeper-v1")).pop().expect("the follower has a log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let (starts, _) = common::log_records(&bytes);
    assert!(starts.len() > 10, "{} records", starts.len());
    bytes[starts[starts.len() / 2] + 28] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();
    let (status, out) = common::serve_expecting_exit(&e.servers[follower].dir.join("zoo.cfg"), SETTLE);
    assert!(status.is_some_and(|s| !s.success()), "it refuses to start ({status:?}):\n{out}");
    let file = segment.file_name().unwrap().to_str().unwrap();
    assert!(out.contains(file) && out.contains("corrupt at offset"), "the refusal names {file} and the offset:\n{out}");
    // The other two go on.
    assert_eq!(c.create("/w/after-corrupt", b"c", 0), Some(0));
}

#[test]
fn a_follower_whose_disk_fills_stops_while_the_others_go_on() {
    let mut e = Ensemble::start("ens-full-disk", 3, "preAllocSize=512\nsnapCount=100000");
    setup(&e);
    let leader = e.leader();
    let follower = e.others(leader)[0];
    // The follower's dataDir moves onto a 3 MiB tmpfs.
    e.kill(follower);
    let data = e.servers[follower].dir.join("data");
    let saved = e.servers[follower].dir.join("saved");
    common::copy_dir(&data, &saved);
    let _mounted = common::mount_tmpfs(&data, "3m");
    common::copy_dir(&saved, &data);
    e.restart(follower);
    let mut c = connect(&e, leader);
    let blob = vec![b'z'; 60_000];
    let mut acked = Vec::new();
    // 3 MiB fill up after about 50 of these; keep writing until the follower has stopped.
    for i in 0..400 {
        if e.exited(follower) {
            break;
        }
        let name = format!("big{i}");
        assert_eq!(c.create(&format!("/w/{name}"), &blob, 0), Some(0), "the leader and the other follower go on acknowledging; logs:\n{}", e.logs());
        acked.push(name);
    }
    assert!(eventually(SETTLE, || e.exited(follower) || !e.is_up(follower)), "the follower stops when its log cannot grow; logs:\n{}", e.logs());
    assert!(e.servers[follower].log().contains("FATAL"), "loudly:\n{}", e.servers[follower].log());
    for n in 0..10 {
        let name = format!("after-{n}");
        assert_eq!(c.create(&format!("/w/{name}"), b"a", 0), Some(0));
        acked.push(name);
    }
    // Only the acknowledged names are checked for content; the blobs are long.
    let mut views = Vec::new();
    for i in e.others(follower) {
        let mut r = connect(&e, i);
        r.sync("/w");
        let mut children = r.children("/w");
        children.sort();
        views.push(children);
    }
    assert_eq!(views[0], views[1], "the two left agree");
    for name in &acked {
        assert!(views[0].binary_search(name).is_ok(), "acknowledged {name} is there");
    }
}

#[test]
fn a_leader_stopped_with_sigterm_hands_over_and_the_followers_clients_see_no_failure() {
    let mut e = Ensemble::start("ens-sigterm", 3, "");
    setup(&e);
    let leader = e.leader();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let acked = Arc::new(Mutex::new(Vec::new()));
    // One writer per follower, on one connection each: every create must be answered with success.
    let threads: Vec<_> = e
        .others(leader)
        .into_iter()
        .map(|i| {
            let (stop, failures, acked) = (stop.clone(), failures.clone(), acked.clone());
            let mut c = connect(&e, i);
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("term{i}-{n}");
                    n += 1;
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.create(&format!("/w/{name}"), name.as_bytes(), 0)));
                    let Ok(result) = result else {
                        failures.lock().unwrap().push(format!("{name}: the connection broke"));
                        return;
                    };
                    match result {
                        Some(0) => acked.lock().unwrap().push(name),
                        other => failures.lock().unwrap().push(format!("{name}: {other:?}")),
                    }
                }
            })
        })
        .collect();
    wait_for_writes(&acked, 50, &e);
    let started = Instant::now();
    let status = e.terminate(leader);
    let stopped_in = started.elapsed();
    assert!(status.is_some_and(|s| s.success()), "SIGTERM: exit 0 ({status:?}); log:\n{}", e.servers[leader].log());
    let log = e.servers[leader].log();
    assert!(log.contains("handing leadership to server") && log.contains("stopping: every client's request answered"), "{log}");
    let target = acked.lock().unwrap().len() + 50;
    let went_on = eventually(SETTLE, || acked.lock().unwrap().len() >= target);
    assert!(went_on, "writes went on; failures {:?}; logs:\n{}", failures.lock().unwrap(), e.logs());
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert!(failures.lock().unwrap().is_empty(), "the followers' clients saw failures: {:?}; logs:\n{}", failures.lock().unwrap(), e.logs());
    e.restart(leader);
    assert_agree(&e, &acked.lock().unwrap());
    eprintln!("the leader stopped {stopped_in:?} after SIGTERM");
}

#[test]
fn a_rolling_restart_under_keeper_bench_load_fails_no_request_and_loses_no_session() {
    let mut e = Ensemble::start("ens-roll", 3, "");
    let hosts: Vec<String> = e.servers.iter().map(|s| s.addr().to_string()).collect();
    let bench = std::process::Command::new("timeout")
        .args([
            "90",
            env!("CARGO_BIN_EXE_keeper-bench"),
            "run",
            "--target",
            &hosts.join(","),
            "--workload",
            "set",
            "--clients",
            "6",
            "--warmup",
            "1",
            "--duration",
            "20",
            "--no-progress",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("keeper-bench starts");
    let bench = common::KillOnDrop::new(bench);
    let packets = |i: usize| {
        common::four_letter(e.servers[i].client_port, "mntr")
            .lines()
            .find_map(|l| l.strip_prefix("zk_packets_received\t").and_then(|v| v.parse::<u64>().ok()))
            .unwrap_or(0)
    };
    // keeper-bench prepares its nodes through the first server; the load then goes to all three.
    assert!(eventually(SETTLE, || packets(1) + packets(2) > 300), "the load is on; logs:\n{}", e.logs());
    // One server after another: SIGTERM, then a start on its data, leader included.
    let mut order: Vec<usize> = e.others(e.leader());
    order.push(e.leader());
    for i in order {
        let status = e.terminate(i);
        assert!(status.is_some_and(|s| s.success()), "server {} exits 0 on SIGTERM ({status:?}); log:\n{}", i + 1, e.servers[i].log());
        e.restart(i);
    }
    let out = bench.wait_with_output();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "keeper-bench saw no failed request and kept every session ({}):\n{text}\n{}", out.status, e.logs());
    assert!(text.contains("sessions re-attached to another server"), "sessions moved as their servers stopped:\n{text}");
    assert_agree(&e, &[]);
}
