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
