//! Logs of a real `keeper serve`: one line per event with its time, level
//! and module; the level set by `keeper.logLevel` (or `KEEPER_LOG`);
//! nothing per request at the default level; and warnings a client can
//! cause over and over logged at most once a second, with the count left out.

mod common;

use common::raw::RawClient;
use common::{Keeper, eventually};
use std::io::Write;
use std::time::Duration;

#[test]
fn lines_carry_time_level_and_module_and_requests_log_nothing() {
    let k = Keeper::start_with("logging", "", 1);
    let log = k.log();
    let serving = log.lines().find(|l| l.contains("serving on")).unwrap_or_else(|| panic!("a start-up line:\n{log}"));
    let mut fields = serving.split_whitespace();
    let (time, level, module) = (fields.next().unwrap(), fields.next().unwrap(), fields.next().unwrap());
    assert!(time.ends_with('Z') && time.contains('T'), "an RFC 3339 time first: {serving}");
    assert_eq!(level, "INFO", "{serving}");
    assert!(module.starts_with("keeper::runtime"), "the module: {serving}");
    let before = k.log().lines().count();
    let mut c = RawClient::connect(k.addr());
    for i in 0..200 {
        assert_eq!(c.create(&format!("/quiet{i}"), b"x", 0), Some(0));
        assert!(c.get(&format!("/quiet{i}")).is_some());
    }
    assert_eq!(k.log().lines().count(), before, "no line per request at the default level:\n{}", k.log());
}

#[test]
fn a_client_that_misbehaves_over_and_over_is_logged_once_a_second() {
    let k = Keeper::start_with("logging-limited", "", 1);
    for _ in 0..100 {
        let mut c = RawClient::connect(k.addr());
        // An opcode no ZooKeeper has: answered Unimplemented, the connection closed, a warning.
        c.send_raw(&common::raw::frame(|w| {
            w.int(1).int(9999);
        }))
        .unwrap();
        assert_eq!(c.read().map(|r| r.header.err), Some(-6), "Unimplemented");
        assert!(c.is_closed());
    }
    let warnings = |log: &str| log.lines().filter(|l| l.contains("unknown opcode 9999")).count();
    let log = k.log();
    assert!((1..=5).contains(&warnings(&log)), "at most one a second, not one per client:\n{log}");
    // A second later the next one says how many were left out.
    std::thread::sleep(Duration::from_millis(1100));
    let mut c = RawClient::connect(k.addr());
    c.send_raw(&common::raw::frame(|w| {
        w.int(1).int(9999);
    }))
    .unwrap();
    let left_out = |l: &str| l.split("suppressed=").nth(1).and_then(|n| n.split_whitespace().next()?.parse::<u64>().ok()).unwrap_or(0);
    let counted = eventually(Duration::from_secs(5), || k.log().lines().any(|l| l.contains("unknown opcode 9999") && left_out(l) > 0));
    assert!(counted, "the count left out is logged:\n{}", k.log());
}

#[test]
fn the_level_comes_from_the_config_or_keeper_log() {
    let k = Keeper::start_with("logging-warn", "keeper.logLevel=warn", 1);
    let log = k.log();
    assert!(!log.contains("serving on") && !log.contains(" INFO "), "keeper.logLevel=warn leaves info out:\n{log}");
    let dir = common::temp_dir("logging-bad");
    let config = dir.join("zoo.cfg");
    let mut f = std::fs::File::create(&config).unwrap();
    writeln!(f, "dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\nkeeper.logLevel=info,keeper=loud=x", dir.join("data").display(), common::free_port())
        .unwrap();
    let (status, out) = common::serve_expecting_exit(&config, Duration::from_secs(20));
    assert!(status.is_some_and(|s| !s.success()) && out.contains("keeper.logLevel"), "a filter that does not parse stops start-up, naming the key:\n{out}");
}
