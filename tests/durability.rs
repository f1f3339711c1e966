//! No acknowledged write is ever lost: real processes killed with SIGKILL at
//! random moments, damaged log tails, damaged snapshots.
//!
//! Short mode (CI) runs a handful of crash cycles; `KEEPER_LONG_TESTS=1`
//! runs 200 or more (`KEEPER_CRASH_CYCLES=N` sets the number).

mod common;

use common::Keeper;
use common::raw::RawClient;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CREATE: i32 = 1;
const GET_DATA: i32 = 4;
const GET_CHILDREN: i32 = 8;
const MULTI: i32 = 14;

/// Small segments and frequent snapshots, so crashes land in every phase.
const STORAGE: &str = "snapCount=40\npreAllocSize=16";

fn crash_cycles() -> usize {
    if let Ok(n) = std::env::var("KEEPER_CRASH_CYCLES") {
        return n.parse().expect("KEEPER_CRASH_CYCLES is a number");
    }
    if std::env::var("KEEPER_LONG_TESTS").is_ok_and(|v| v == "1") { 200 } else { 12 }
}

fn create(c: &mut RawClient, path: &str, data: &[u8]) -> i32 {
    c.call(CREATE, |w| {
        w.ustring(path).buffer(Some(data)).count(1).int(31).ustring("world").ustring("anyone").int(0);
    })
    .0
    .header
    .err
}

fn get(c: &mut RawClient, path: &str) -> Option<Vec<u8>> {
    let (reply, _) = c.call(GET_DATA, |w| {
        w.ustring(path).boolean(false);
    });
    if reply.header.err != 0 {
        return None;
    }
    let len = i32::from_be_bytes(reply.body[..4].try_into().unwrap());
    Some(reply.body[4..4 + len.max(0) as usize].to_vec())
}

fn children(c: &mut RawClient, path: &str) -> Vec<String> {
    let (reply, _) = c.call(GET_CHILDREN, |w| {
        w.ustring(path).boolean(false);
    });
    assert_eq!(reply.header.err, 0, "getChildren {path}");
    let mut r = keeper::proto::jute::JuteReader::new(reply.body);
    r.strings().unwrap()
}

/// The data every test node carries: derived from its name, so a half-written
/// or misplaced value is detectable.
fn payload(name: &str) -> Vec<u8> {
    format!("{name}:{}", "x".repeat(name.len() * 7 % 200)).into_bytes()
}

/// Writes single creates and two-node multis until told to stop; records
/// what was acknowledged.
fn writer(addr: std::net::SocketAddr, cycle: usize, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<String>>>) {
    let Some(mut c) = RawClient::attach(addr, 0, &[0; 16], 30_000) else { return };
    let _ = c.stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("c{cycle}-{i}");
        let path = format!("/data/{name}");
        let data = payload(&name);
        let xid = c.send(CREATE, |w| {
            w.ustring(&path).buffer(Some(&data)).count(1).int(31).ustring("world").ustring("anyone").int(0);
        });
        match c.read() {
            Some(r) if r.header.xid == xid && r.header.err == 0 => acked.lock().unwrap().push(name.clone()),
            _ => return,
        }
        // A multi creating a pair: both or neither must survive.
        let (a, b) = (format!("/pairs/{name}-a"), format!("/pairs/{name}-b"));
        let xid = c.send(MULTI, |w| {
            for p in [&a, &b] {
                w.int(CREATE).boolean(false).int(-1);
                w.ustring(p).buffer(Some(b"p")).count(1).int(31).ustring("world").ustring("anyone").int(0);
            }
            w.int(-1).boolean(true).int(-1);
        });
        match c.read() {
            Some(r) if r.header.xid == xid && r.header.err == 0 => acked.lock().unwrap().push(format!("pair:{name}")),
            _ => return,
        }
        i += 1;
    }
}

/// Checks that everything acknowledged is present and intact, and that every
/// pair is whole.
fn verify(k: &Keeper, acked: &[String]) {
    let mut c = RawClient::connect(k.addr());
    let present: std::collections::HashSet<String> = children(&mut c, "/data").into_iter().collect();
    for name in acked.iter().filter(|n| !n.starts_with("pair:")) {
        assert!(present.contains(name), "acknowledged create of /data/{name} was lost; log:\n{}", k.log());
    }
    for name in &present {
        assert_eq!(get(&mut c, &format!("/data/{name}")).as_deref(), Some(payload(name).as_slice()), "/data/{name} holds its own data");
    }
    let pairs: std::collections::HashSet<String> = children(&mut c, "/pairs").into_iter().collect();
    for p in &pairs {
        let base = p.strip_suffix("-a").or_else(|| p.strip_suffix("-b")).unwrap();
        assert!(pairs.contains(&format!("{base}-a")) && pairs.contains(&format!("{base}-b")), "half a multi survived: {p}");
    }
    for name in acked.iter().filter_map(|n| n.strip_prefix("pair:")) {
        assert!(pairs.contains(&format!("{name}-a")), "acknowledged multi {name} was lost");
    }
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_write() {
    let mut k = Keeper::start_with("crash", STORAGE, 1);
    {
        let mut c = RawClient::connect(k.addr());
        assert_eq!(create(&mut c, "/data", b""), 0);
        assert_eq!(create(&mut c, "/pairs", b""), 0);
    }
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut seed = common::test_seed("kill_9_at_random_moments_loses_no_acknowledged_write", None);
    let cycles = crash_cycles();
    for cycle in 0..cycles {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (stop, acked, addr) = (stop.clone(), acked.clone(), k.addr());
                std::thread::spawn(move || writer(addr, cycle * 2 + w, stop, acked))
            })
            .collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(30 + seed % 250));
        k.kill();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        k.restart();
        verify(&k, &acked.lock().unwrap());
    }
    let total = acked.lock().unwrap().len();
    assert!(total > cycles, "the writers made progress ({total} acknowledged writes in {cycles} cycles)");
    eprintln!("{cycles} kill -9 cycles, {total} acknowledged writes, none lost");
}

/// Writes `n` nodes through a server, stops it with SIGKILL, and returns the
/// data dir (a copy the test may damage) and the names written, in order.
fn written_then_killed(name: &str, extra: &str, n: usize) -> (Keeper, Vec<String>) {
    let mut k = Keeper::start_with(name, extra, 1);
    let mut c = RawClient::connect(k.addr());
    assert_eq!(create(&mut c, "/data", b""), 0);
    let names: Vec<String> = (0..n).map(|i| format!("n{i:04}")).collect();
    for name in &names {
        assert_eq!(create(&mut c, &format!("/data/{name}"), &payload(name)), 0);
    }
    k.kill();
    (k, names)
}

fn keeper_dir(k: &Keeper) -> PathBuf {
    k.data_dir().join("keeper-v1")
}

fn last_segment(dir: &Path) -> PathBuf {
    common::log_segments(dir).pop().unwrap()
}

/// Starts a server on a damaged copy: either it serves a prefix of `names`
/// (every present node intact, nothing after a missing one), or it refuses
/// with a message naming the file and an offset.
fn recovers_prefix_or_refuses(k: &mut Keeper, names: &[String], case: &str) -> Option<usize> {
    let log_path = k.dir.join("recover.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut guard = common::KillOnDrop::new(
        std::process::Command::new(env!("CARGO_BIN_EXE_keeper"))
            .args(["serve", "--config"])
            .arg(k.dir.join("zoo.cfg"))
            .stdin(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let child = guard.child();
    let serving = common::eventually(Duration::from_secs(10), || common::four_letter(k.port, "srvr").contains("Mode:") || child.try_wait().unwrap().is_some());
    assert!(serving, "{case}: neither served nor exited");
    if let Some(status) = child.try_wait().unwrap() {
        let err = std::fs::read_to_string(&log_path).unwrap();
        assert!(!status.success(), "{case}: exited successfully without serving");
        assert!(err.contains("offset") && (err.contains("corrupt") || err.contains("invalid")), "{case}: refusal names file and offset:\n{err}");
        return None;
    }
    let mut c = RawClient::connect(k.addr());
    let (reply, _) = c.call(GET_CHILDREN, |w| {
        w.ustring("/data").boolean(false);
    });
    assert_eq!(reply.header.err, 0, "{case}: /data exists after recovery; server said:\n{}", std::fs::read_to_string(&log_path).unwrap());
    let present: std::collections::HashSet<String> = children(&mut c, "/data").into_iter().collect();
    let prefix = names.iter().take_while(|n| present.contains(*n)).count();
    assert_eq!(prefix, present.len(), "{case}: recovered nodes form a prefix of the writes");
    for name in &present {
        assert_eq!(get(&mut c, &format!("/data/{name}")).as_deref(), Some(payload(name).as_slice()), "{case}: {name} intact");
    }
    Some(prefix)
}

/// A named way to damage a segment's bytes.
type DamageCase = (String, Box<dyn Fn(&mut Vec<u8>)>);

#[test]
fn torn_and_damaged_log_tails() {
    let (mut k, names) = written_then_killed("torn", "snapCount=100000", 30);
    let dir = keeper_dir(&k);
    let pristine = dir.with_extension("pristine");
    common::copy_dir(&dir, &pristine);
    let seg = last_segment(&dir);
    let bytes = std::fs::read(&seg).unwrap();
    let (starts, end) = common::log_records(&bytes);
    let last = *starts.last().unwrap();
    let cases: Vec<DamageCase> = vec![
        ("cut inside the last length".into(), Box::new(move |b: &mut Vec<u8>| b.truncate(last + 2))),
        ("cut inside the last crc".into(), Box::new(move |b: &mut Vec<u8>| b.truncate(last + 6))),
        ("cut inside the last term".into(), Box::new(move |b: &mut Vec<u8>| b.truncate(last + 20))),
        ("cut inside the last payload".into(), Box::new(move |b: &mut Vec<u8>| b.truncate(last + 30))),
        ("cut at the end of records".into(), Box::new(move |b: &mut Vec<u8>| b.truncate(end))),
        ("flipped byte in the last payload".into(), Box::new(move |b: &mut Vec<u8>| b[last + 28] ^= 0x55)),
        ("garbage after the last record".into(), Box::new(move |b: &mut Vec<u8>| b[end + 5] = 0x77)),
        ("flipped byte in the middle".into(), Box::new(move |b: &mut Vec<u8>| b[starts_mid(&starts) + 28] ^= 0x55)),
    ];
    fn starts_mid(starts: &[usize]) -> usize {
        starts[starts.len() / 2]
    }
    let mut seed = 77u64;
    let mut random_cases: Vec<DamageCase> = Vec::new();
    for _ in 0..6 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let at = 32 + (seed >> 33) as usize % (end - 32);
        random_cases.push((format!("cut at random offset {at}"), Box::new(move |b: &mut Vec<u8>| b.truncate(at))));
        random_cases.push((format!("flipped byte at random offset {at}"), Box::new(move |b: &mut Vec<u8>| b[at] ^= 0x01)));
    }
    for (case, damage) in cases.into_iter().chain(random_cases) {
        std::fs::remove_dir_all(&dir).unwrap();
        common::copy_dir(&pristine, &dir);
        let mut b = bytes.clone();
        damage(&mut b);
        std::fs::write(&seg, &b).unwrap();
        let outcome = recovers_prefix_or_refuses(&mut k, &names, &case);
        match case.as_str() {
            "cut at the end of records" | "garbage after the last record" => assert_eq!(outcome, Some(names.len()), "{case}: nothing lost"),
            c if c.contains("last") => assert_eq!(outcome, Some(names.len() - 1), "{case}: only the torn record is dropped"),
            "flipped byte in the middle" => assert_eq!(outcome, None, "{case}: refused"),
            _ => {}
        }
    }
    std::fs::remove_dir_all(&pristine).unwrap();
}

#[test]
fn corrupt_newest_snapshot_falls_back_to_an_older_one_and_the_log() {
    let mut k = Keeper::start_with("snapfall", "snapCount=10", 1);
    let dir = keeper_dir(&k);
    // A snapshot being written when a server was killed is a `.tmp` file: not a snapshot.
    let snapshots = || -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().is_some_and(|n| n.starts_with("snapshot.") && !n.ends_with(".tmp")))
            .collect();
        found.sort();
        found
    };
    // Rounds of ten creates with pauses, until two snapshots exist: the
    // snapshot thread counts what arrived during each pause, so one burst
    // faster than its poll would make a single snapshot.
    let mut c = RawClient::connect(k.addr());
    assert_eq!(create(&mut c, "/data", b""), 0);
    let mut names = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while snapshots().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "two snapshots within 10 s: {:?}", snapshots());
        for _ in 0..10 {
            let name = format!("n{:04}", names.len());
            assert_eq!(create(&mut c, &format!("/data/{name}"), &payload(&name)), 0);
            names.push(name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(c);
    k.kill();
    let snaps = snapshots();
    let newest = snaps.last().unwrap().clone();
    let mut corrupt = std::fs::read(&newest).unwrap();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    std::fs::write(&newest, &corrupt).unwrap();
    assert_eq!(recovers_prefix_or_refuses(&mut k, &names, "corrupt newest snapshot"), Some(names.len()));
    // Without the log that the older snapshots need, start-up must refuse. Keep
    // only the corrupt snapshot (the server just run may have written others).
    for s in snapshots().iter().filter(|s| **s != newest) {
        std::fs::remove_file(s).unwrap();
    }
    std::fs::write(&newest, &corrupt).unwrap();
    std::fs::remove_file(&common::log_segments(&dir)[0]).unwrap();
    assert_eq!(recovers_prefix_or_refuses(&mut k, &names, "corrupt only snapshot, log purged"), None);
}

#[test]
fn tree_after_restart_equals_tree_before() {
    let mut k = Keeper::start_with("same-tree", "snapCount=25", 2);
    let mut c = RawClient::connect(k.addr());
    assert_eq!(create(&mut c, "/data", b""), 0);
    for i in 0..200 {
        assert_eq!(create(&mut c, &format!("/data/t{i}"), &payload(&format!("t{i}"))), 0);
        if i % 3 == 0 {
            c.call(5, |w| {
                w.ustring(&format!("/data/t{i}")).buffer(Some(b"changed")).int(-1);
            });
        }
    }
    let snapshot = |c: &mut RawClient| -> BTreeMap<String, Option<Vec<u8>>> {
        children(c, "/data").into_iter().map(|n| (n.clone(), get(c, &format!("/data/{n}")))).collect()
    };
    let before = snapshot(&mut c);
    drop(c);
    k.restart();
    let mut c = RawClient::connect(k.addr());
    assert_eq!(snapshot(&mut c), before);
    assert!(k.log().contains("from snapshot"), "recovery used a snapshot:\n{}", k.log());
}

#[test]
fn full_disk_stops_the_server_without_losing_acknowledged_writes() {
    // A 3 MiB tmpfs the test mounts itself (needs root, as CI has), holding
    // dataDir: the log's 512 KiB segments fill it after a few rolls.
    let mount_point = common::temp_dir("full-disk-mnt");
    let _mounted = common::mount_tmpfs(&mount_point, "3m");
    let data = mount_point.join("data");
    let mut k = Keeper::start_with("full-disk", &format!("dataDir={}\npreAllocSize=512\nsnapCount=100000", data.display()), 1);
    let mut c = RawClient::connect(k.addr());
    let _ = c.stream.set_read_timeout(Some(Duration::from_secs(5)));
    assert_eq!(create(&mut c, "/data", b""), 0);
    let blob = vec![b'z'; 60_000];
    let mut acked = Vec::new();
    for i in 0..200 {
        let name = format!("big{i}");
        let xid = c.send(CREATE, |w| {
            w.ustring(&format!("/data/{name}")).buffer(Some(&blob)).count(1).int(31).ustring("world").ustring("anyone").int(0);
        });
        match c.read() {
            Some(r) if r.header.xid == xid && r.header.err == 0 => acked.push(name),
            _ => break,
        }
    }
    assert!(!acked.is_empty() && acked.len() < 200, "the disk filled up part-way ({} writes acknowledged)", acked.len());
    assert!(common::eventually(Duration::from_secs(10), || !k.is_running()), "the server stops when the log cannot grow");
    assert!(k.log().contains("FATAL"), "the failure is logged loudly:\n{}", k.log());
    // Move the data to a roomy filesystem and restart: everything acknowledged is there.
    let roomy = k.dir.join("roomy");
    common::copy_dir(&data, &roomy);
    k.extra = format!("dataDir={}\npreAllocSize=512\nsnapCount=100000", roomy.display());
    k.restart();
    let mut c = RawClient::connect(k.addr());
    for name in &acked {
        assert_eq!(get(&mut c, &format!("/data/{name}")).map(|d| d.len()), Some(blob.len()), "acknowledged {name} survived the full disk");
    }
}

#[test]
fn sessions_survive_a_restart_and_expire_by_their_timeout_after_it() {
    let mut k = Keeper::start("sessions-restart");
    let mut c = RawClient::attach(k.addr(), 0, &[0; 16], 2_000).expect("session");
    assert_eq!(
        c.call(CREATE, |w| {
            w.ustring("/eph").buffer(Some(b"e")).count(1).int(31).ustring("world").ustring("anyone").int(1);
        })
        .0
        .header
        .err,
        0
    );
    let (session, passwd) = (c.session_id, c.passwd.clone());
    drop(c);
    k.restart();
    // Right after the restart the session and its ephemeral are still there...
    let mut probe = RawClient::connect(k.addr());
    assert_eq!(get(&mut probe, "/eph").as_deref(), Some(b"e".as_slice()), "the ephemeral is restored with its session");
    let resumed = RawClient::attach(k.addr(), session, &passwd, 2_000);
    assert!(resumed.is_some(), "the session can be resumed after the restart");
    drop(resumed);
    // ...and once nobody keeps it alive, it expires by its timeout and takes the ephemeral.
    assert!(common::eventually(Duration::from_secs(10), || get(&mut probe, "/eph").is_none()), "the ephemeral goes when its session expires after the restart");
}

#[test]
fn a_second_server_on_the_same_data_directories_refuses_to_start() {
    let mut k = Keeper::start("dir-lock");
    let mut c = RawClient::connect(k.addr());
    let names: Vec<String> = (0..50).map(|i| format!("/locked{i}")).collect();
    for name in &names {
        assert_eq!(create(&mut c, name, name.as_bytes()), 0);
    }
    let shared = k.data_dir();
    let own = k.dir.join("own");
    let cases = [
        ("the same dataDir", format!("dataDir={}", shared.display())),
        ("the same dataLogDir", format!("dataDir={}\ndataLogDir={}", own.display(), shared.display())),
    ];
    for (case, dirs) in cases {
        let config = k.dir.join("second.cfg");
        std::fs::write(&config, format!("tickTime=500\nclientPort={}\nclientPortAddress=127.0.0.1\n{dirs}\n", common::free_port())).unwrap();
        let (status, out) = common::serve_expecting_exit(&config, Duration::from_secs(15));
        let status = status.unwrap_or_else(|| panic!("a second server on {case} kept running:\n{out}"));
        assert!(!status.success(), "a second server on {case} exits with an error");
        assert!(out.contains(&format!("in use by process {}", k.pid())), "the refusal on {case} names the holder's pid:\n{out}");
    }
    assert_eq!(get(&mut c, "/locked49").as_deref(), Some(b"/locked49".as_slice()), "the first server kept serving");
    drop(c);
    k.restart();
    let mut c = RawClient::connect(k.addr());
    for name in &names {
        assert_eq!(get(&mut c, name).as_deref(), Some(name.as_bytes()), "{name} survived the refused second server and a restart");
    }
}

/// Reads a node's data and stat; `None` with the error code if it fails.
fn get_with_stat(c: &mut RawClient, path: &str) -> Result<(Option<Vec<u8>>, keeper::proto::records::Stat), i32> {
    let (reply, _) = c.call(GET_DATA, |w| {
        w.ustring(path).boolean(false);
    });
    if reply.header.err != 0 {
        return Err(reply.header.err);
    }
    let mut r = keeper::proto::jute::JuteReader::new(reply.body);
    let data = r.buffer().unwrap().map(|d| d.to_vec());
    Ok((data, keeper::proto::records::Stat::read(&mut r).unwrap()))
}

/// `tests/fixtures/data-1ce5204` was written by keeper at 1ce5204, before the
/// sequencer, the zxid type and the log interface (kazoo and zkCli.sh
/// against it, then kill -9): a log of two 8 KiB segments and three
/// snapshots. Every later keeper must start on it unchanged.
#[test]
fn a_data_directory_written_by_an_earlier_version_starts_unchanged() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-1ce5204/keeper-v1");
    let mut k = Keeper::start_with_data("fixture", "", &fixture);
    let mut c = RawClient::connect(k.addr());
    let mut names = children(&mut c, "/fixture");
    names.sort();
    let mut expected: Vec<String> = (0..50).map(|i| format!("n{i:02}")).collect();
    expected.extend(["box", "eph", "locked", "m1", "m2", "seq-0000000060", "seq-0000000061", "ttl"].map(String::from));
    expected.sort();
    assert_eq!(names, expected);
    for i in 0..50 {
        let (data, stat) = get_with_stat(&mut c, &format!("/fixture/n{i:02}")).unwrap();
        let (want, version) = if i % 3 == 0 { (format!("changed-{i}"), 1) } else { (format!("value-{i}"), 0) };
        assert_eq!((data, stat.version), (Some(want.into_bytes()), version), "/fixture/n{i:02}");
    }
    let (_, eph) = get_with_stat(&mut c, "/fixture/eph").unwrap();
    assert_ne!(eph.ephemeral_owner, 0, "the ephemeral keeps its owner, whose session was restored");
    let (_, box_stat) = get_with_stat(&mut c, "/fixture/box").unwrap();
    assert_eq!((box_stat.ephemeral_owner, box_stat.num_children), (0, 1), "the container and its child");
    assert_eq!(get_with_stat(&mut c, "/fixture/locked").unwrap_err(), -102, "the digest ACL still guards the node (NoAuth)");
    assert_eq!(get(&mut c, "/fixture/m2").as_deref(), Some(b"b".as_slice()));
    assert_eq!(get(&mut c, "/fixture").as_deref(), Some(b"root".as_slice()));
    // And it goes on from there: a new write takes the next zxid and survives a restart.
    assert_eq!(create(&mut c, "/fixture/after", b"x"), 0);
    let (_, after) = get_with_stat(&mut c, "/fixture/after").unwrap();
    assert!(after.czxid > eph.czxid, "zxids continue from the old log");
    drop(c);
    k.restart();
    let mut c = RawClient::connect(k.addr());
    assert_eq!(get(&mut c, "/fixture/after").as_deref(), Some(b"x".as_slice()));
    assert_eq!(get(&mut c, "/fixture/n03").as_deref(), Some(b"changed-3".as_slice()));
}
