//! Unmodified ZooKeeper clients against `keeper serve`: kazoo (Python) with
//! its recipes, zkCli.sh (Java) and cli_mt (C), from Debian's packages, which
//! `tools/install-test-deps.sh` installs. The scripts live in tests/clients/
//! and also pass against Apache ZooKeeper 3.8 (they were checked there).

mod common;

use common::{Keeper, SYSTEM_PYTHON};
use std::process::Command;

fn run(mut cmd: Command, what: &str, k: &Keeper) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({}):\n{text}\n--- keeper log ---\n{}", out.status, k.log());
    assert!(text.contains("PASS"), "{what} printed no passing checks:\n{text}");
}

#[test]
fn kazoo_recipes_and_operations() {
    common::require(SYSTEM_PYTHON);
    common::require("/usr/lib/python3/dist-packages/kazoo");
    let k = Keeper::start_with("kazoo", "", 2);
    let mut cmd = Command::new(SYSTEM_PYTHON);
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/kazoo_suite.py")).arg(k.connect_string());
    run(cmd, "kazoo_suite.py", &k);
}

#[test]
fn zkcli_and_cli_mt() {
    common::require("/usr/share/zookeeper/bin/zkCli.sh");
    let k = Keeper::start("cli-tools");
    let mut cmd = Command::new("bash");
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/cli_tools.sh")).arg(k.connect_string());
    run(cmd, "cli_tools.sh", &k);
}

/// zkCli.sh's `setquota -N|-B` (hard limits) against a server with
/// `enforceQuota=true`: past a limit, a create or setData fails with
/// "Quota has exceeded", as ZooKeeper 3.7+ answers.
#[test]
fn zkcli_hard_quotas_are_enforced() {
    const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
    common::require(ZKCLI);
    let k = Keeper::start_with("quota-cli", "enforceQuota=true", 1);
    let commands = [
        "create /q abc",
        "setquota -N 2 /q",
        "setquota -B 10 /q",
        "create /q/a 12345",
        "create /q/b",
        "set /q/a 1234567890",
        "set /q/a 1234567",
        "listquota /q",
        "quit",
    ];
    let mut cli = Command::new("timeout")
        .args(["60", ZKCLI, "-server", &k.connect_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("zkCli.sh starts");
    let mut stdin = cli.stdin.take().expect("piped stdin");
    std::io::Write::write_all(&mut stdin, (commands.join("\n") + "\n").as_bytes()).unwrap();
    drop(stdin);
    let out = common::KillOnDrop::new(cli).wait_with_output();
    let out = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The root and /q/a make 2 nodes; /q/b would be a 3rd.
    assert!(out.contains("Created /q/a"), "{out}");
    assert!(out.contains("Quota has exceeded : /q/b"), "{out}");
    // 3 + 10 bytes pass the 10-byte limit; 3 + 7 do not.
    assert!(out.contains("Quota has exceeded : /q/a"), "{out}");
    assert!(out.contains("Output stat for /q count=2,bytes=10"), "{out}");
    assert!(out.contains("countHardLimit=2"), "{out}");
}
