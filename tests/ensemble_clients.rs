//! Unmodified clients with multi-host connect strings against a 3-server
//! keeper ensemble (real processes on loopback): kazoo and the Rust
//! `zookeeper-client` crate keep their sessions and ephemerals when the
//! server they use is killed; zkCli.sh and cli_mt (C) reach the ensemble
//! through a connect string that names a dead server; kazoo reads from a
//! server cut off from its quorum in read-only mode.

mod common;

use common::ensemble::{Ensemble, SETTLE};
use common::raw::RawClient;
use common::{SYSTEM_PYTHON, eventually, four_letter};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use zookeeper_client as zk;

/// The connect string of every server, `first` first.
fn hosts_starting_at(e: &Ensemble, first: usize) -> String {
    let mut order: Vec<usize> = (0..e.servers.len()).collect();
    order.rotate_left(first);
    order.iter().map(|&i| e.servers[i].addr().to_string()).collect::<Vec<_>>().join(",")
}

/// Runs a command-line client until its output passes `ok`, at most 8 times.
/// zkCli.sh and cli_mt run a batch command as soon as they start, before
/// their first connection attempt has settled: when they try a dead server
/// first, that command fails with ConnectionLoss (as against ZooKeeper),
/// and an operator runs it again.
fn until(what: &str, ok: &dyn Fn(&str) -> bool, run: &dyn Fn() -> String) {
    let mut seen = String::new();
    for _ in 0..8 {
        seen = run();
        if ok(&seen) {
            return;
        }
    }
    panic!("{what} never succeeded; last output:\n{seen}");
}

#[test]
fn kazoo_keeps_its_session_when_the_leader_it_uses_is_killed() {
    common::require(SYSTEM_PYTHON);
    common::require("/usr/lib/python3/dist-packages/kazoo");
    let mut e = Ensemble::start("ens-kazoo", 3, "");
    let leader = e.leader();
    let mut script = Command::new(SYSTEM_PYTHON)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/kazoo_failover.py"))
        .arg(hosts_starting_at(&e, leader))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let mut lines = BufReader::new(script.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let Some(port) = first.strip_prefix("CONNECTED ").and_then(|p| p.parse::<u16>().ok()) else {
        let _ = script.kill();
        let err = std::io::read_to_string(script.stderr.take().unwrap()).unwrap_or_default();
        panic!("kazoo_failover.py did not connect: {first}\n{err}\n{}", e.logs());
    };
    assert_eq!(port, e.servers[leader].client_port, "kazoo uses the first host, the leader");
    e.kill(leader);
    writeln!(script.stdin.as_mut().unwrap(), "KILLED").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = script.wait().unwrap();
    let err = std::io::read_to_string(script.stderr.take().unwrap()).unwrap_or_default();
    let text = rest.join("\n");
    assert!(status.success() && text.contains("PASS"), "kazoo_failover.py failed ({status}):\n{text}\n{err}\n{}", e.logs());
    assert!(!text.contains("FAIL"), "{text}");
}

#[asyncs::test]
async fn the_rust_client_keeps_its_session_and_ephemeral_when_the_leader_is_killed() {
    let mut e = Ensemble::start("ens-rust", 3, "");
    let leader = e.leader();
    let client =
        zk::Client::connector().with_session_timeout(Duration::from_secs(8)).connect(&hosts_starting_at(&e, leader)).await.expect("the client connects");
    let session = client.session().clone();
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client.create("/rust-eph", b"mine", &ephemeral).await.unwrap();
    client.create("/rust-data", b"0", &persistent).await.unwrap();
    e.kill(leader);
    let mut written = None;
    for attempt in 0..200 {
        match client.set_data("/rust-data", format!("{attempt}").as_bytes(), None).await {
            Ok(_) => {
                written = Some(attempt);
                break;
            }
            // The crate hands the killed server's connection reset to the request in flight as a custom (I/O) error.
            Err(zk::Error::ConnectionLoss | zk::Error::Timeout | zk::Error::Custom(_)) => async_io::Timer::after(Duration::from_millis(50)).await,
            Err(other) => panic!("a write after the kill failed with {other:?}\n{}", e.logs()),
        };
    }
    let written = written.unwrap_or_else(|| panic!("no write succeeded within 200 attempts after the kill\n{}", e.logs()));
    // Expired is a terminal state: a session lost on the way would still say so.
    assert_eq!(client.state(), zk::SessionState::SyncConnected, "the session survived");
    let (data, stat) = client.get_data("/rust-eph").await.expect("the ephemeral survived the fail-over");
    assert_eq!((data.as_slice(), stat.ephemeral_owner), (&b"mine"[..], session.id().0));
    assert_eq!(client.get_data("/rust-data").await.unwrap().0, format!("{written}").into_bytes());
}

#[test]
fn zkcli_and_cli_mt_reach_the_ensemble_through_a_connect_string_naming_a_dead_server() {
    common::require("/usr/share/zookeeper/bin/zkCli.sh");
    let mut e = Ensemble::start("ens-cli", 3, "");
    let leader = e.leader();
    let hosts = hosts_starting_at(&e, leader);
    let zkcli = |command: &str| {
        let out = Command::new("timeout")
            .args(["60", "/usr/share/zookeeper/bin/zkCli.sh", "-server", &hosts])
            .args(command.split(' '))
            .output()
            .expect("zkCli.sh starts");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    until("zkCli.sh create", &|out| out.contains("Created /cli-before"), &|| zkcli("create /cli-before v1"));
    e.kill(leader);
    until("zkCli.sh get after the kill", &|out| out.lines().any(|l| l == "v1"), &|| zkcli("get /cli-before"));
    until("zkCli.sh create after the kill", &|out| out.contains("Created /cli-after"), &|| zkcli("create /cli-after v2"));
    let cli_mt = "/usr/lib/zookeeper/bin/cli_mt";
    common::require(cli_mt);
    // cli_mt runs its batch command on the first connection it opens, and
    // it tries the hosts in order: the dead one goes last, so that the
    // command meets a live server (the dead one is still in the string).
    let hosts_dead_last = hosts_starting_at(&e, (leader + 1) % e.servers.len());
    let cli_mt_get = || {
        let out = Command::new("timeout").args(["30", cli_mt, "-h", &hosts_dead_last, "-c", "get /cli-after"]).output().expect("cli_mt starts");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    until("cli_mt get after the kill", &|out| out.contains("/cli-after: rc = 0") && out.lines().any(|l| l == "v2"), &cli_mt_get);
}

#[test]
fn kazoo_reads_from_a_server_in_read_only_mode_and_writes_again_once_the_quorum_is_back() {
    common::require(SYSTEM_PYTHON);
    common::require("/usr/lib/python3/dist-packages/kazoo");
    let mut e = Ensemble::start("ens-ro", 3, "readonlymode.enabled=true");
    let leader = e.leader();
    let mut writer = RawClient::try_connect(e.servers[leader].addr(), 10_000).expect("a session on the leader");
    assert_eq!(writer.create("/ro-data", b"committed", 0), Some(0));
    let others = e.others(leader);
    let survivor = others[0];
    e.kill(leader);
    e.kill(others[1]);
    let port = e.servers[survivor].client_port;
    assert!(eventually(SETTLE, || four_letter(port, "isro") == "ro"), "isro says ro; log:\n{}", e.servers[survivor].log());
    assert_eq!(e.servers[survivor].mode(), "read-only");
    let out = Command::new(SYSTEM_PYTHON)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/kazoo_read_only.py"))
        .arg(e.servers[survivor].addr().to_string())
        .args(["/ro-data", "committed"])
        .output()
        .expect("python3 starts");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("PASS") && !text.contains("FAIL"), "kazoo_read_only.py ({}):\n{text}\n{}", out.status, e.logs());
    e.restart(others[1]);
    assert!(eventually(SETTLE, || four_letter(port, "isro") == "rw"), "read-only mode ends with a quorum; log:\n{}", e.servers[survivor].log());
    let mut back = RawClient::try_connect(e.servers[survivor].addr(), 10_000).expect("a session once the quorum is back");
    assert_eq!(back.create("/ro-after", b"w", 0), Some(0), "writes again");
}
