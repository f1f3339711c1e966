//! The `keeper` command line and start-up, as a new user meets them: help
//! on every subcommand, "did you mean" for a misspelled subcommand or
//! config key, a busy client port said at once, a real build date, and a
//! start-up node count that matches `srvr`'s.

mod common;

use common::{Keeper, eventually, four_letter, free_port, temp_dir};
use std::process::{Command, Stdio};
use std::time::Duration;

fn keeper(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keeper")).args(args).output().expect("keeper runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_subcommand_has_help_and_a_misspelled_one_gets_a_suggestion() {
    let (code, out, _) = keeper(&["serve", "--help"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("--config") && out.contains("--shards") && out.contains("--broadcast-core"), "{out}");
    for sub in ["purge", "log", "snapshot", "completions"] {
        let (code, out, err) = keeper(&[sub, "--help"]);
        assert_eq!(code, 0, "{sub} --help: {out}{err}");
        assert!(out.contains("Usage: keeper"), "{sub} --help: {out}");
    }
    let (code, _, err) = keeper(&["serev"]);
    assert_eq!(code, 2);
    assert!(err.contains("similar subcommand") && err.contains("serve"), "{err}");
    let (code, _, err) = keeper(&["serve", "--shard", "2"]);
    assert_eq!(code, 2);
    assert!(err.contains("--shards"), "a misspelled flag: {err}");
    let (code, _, err) = keeper(&["serve", "--shards", "0"]);
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = keeper(&["completions", "bash"]);
    assert!(code == 0 && out.contains("keeper"), "{out}");
}

#[test]
fn a_misspelled_key_gets_a_suggestion_and_a_busy_port_is_said_at_once() {
    let dir = temp_dir("cli-busy");
    let port = free_port();
    let holder = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, format!("tickTme=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n", dir.join("data").display())).unwrap();
    let log = dir.join("keeper.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_keeper"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let said = |what: &str| std::fs::read_to_string(&log).unwrap_or_default().contains(what);
    let seen = eventually(Duration::from_secs(5), || said("did you mean tickTime?") && said("is in use; retrying for up to 10 s"));
    let _ = child.kill();
    let _ = child.wait();
    drop(holder);
    assert!(seen, "both said within 5 s:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
}

#[test]
fn srvr_shows_a_build_date_and_the_node_count_the_start_up_line_gave() {
    let k = Keeper::start("cli-srvr");
    let srvr = four_letter(k.port, "srvr");
    let date = srvr.lines().next().and_then(|l| l.split("built on ").nth(1)).unwrap_or_default().to_string();
    assert!(date.len() == "2026-12-05 04:20 UTC".len() && !date.starts_with("1970"), "a build date: {srvr}");
    let counted = srvr.lines().find_map(|l| l.strip_prefix("Node count: ")).expect("srvr has a node count");
    assert!(k.log().contains(&format!("recovered {counted} nodes")), "the start-up line says {counted} nodes:\n{}", k.log());
}

#[test]
fn sigterm_stops_a_standalone_server_cleanly_and_a_restart_has_its_writes() {
    let mut k = Keeper::start("cli-sigterm");
    let mut c = common::raw::RawClient::connect(k.addr());
    for n in 0..20 {
        assert_eq!(c.create(&format!("/t{n}"), b"v", 0), Some(0));
    }
    let status = Command::new("kill").args(["-TERM", &k.pid().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(eventually(Duration::from_secs(10), || !k.is_running()), "it exits");
    let log = k.log();
    assert!(log.contains("SIGTERM: stopping") && log.lines().any(|l| l.ends_with(" stopped")), "{log}");
    k.restart();
    let mut c = common::raw::RawClient::connect(k.addr());
    assert_eq!(c.get("/t19").as_deref(), Some(&b"v"[..]));
}
