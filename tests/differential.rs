//! The differential suite: the same scripted protocol scenarios run against
//! keeper and against Apache ZooKeeper 3.8 (Debian's package, installed by
//! tools/install-test-deps.sh), replies compared field by field after
//! normalising only zxid bases, times, session ids and child order. The
//! scenarios and the documented differences live in tests/differential/run.py.

#[test]
fn keeper_answers_like_zookeeper_3_8() {
    assert!(
        std::path::Path::new("/usr/share/java/zookeeper.jar").exists(),
        "ZooKeeper 3.8 is missing: run tools/install-test-deps.sh (the README's test command does)"
    );
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/differential/run.py"))
        .args(["--keeper", env!("CARGO_BIN_EXE_keeper")])
        .output()
        .expect("python3 runs the differential harness");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "keeper differs from ZooKeeper 3.8:\n{text}");
    assert!(text.contains("scenarios passed"), "the harness ran its scenarios:\n{text}");
}
