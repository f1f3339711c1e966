//! keeper-bench against a real `keeper serve`: every workload runs briefly,
//! and what it counted must have happened on the server: the server received
//! at least that many requests (sent that many notifications, for the watch
//! fan-out), and write workloads moved the zxid at least that far.

mod common;

use common::{Keeper, four_letter};
use std::process::Command;

/// (received packets, sent packets, last zxid) from `srvr`.
fn server_counters(port: u16) -> (u64, u64, i64) {
    let srvr = four_letter(port, "srvr");
    let field = |name: &str| srvr.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_else(|| panic!("srvr has {name}: {srvr}")).to_string();
    let received = field("Received:").parse().unwrap();
    let sent = field("Sent:").parse().unwrap();
    let zxid = i64::from_str_radix(field("Zxid:").trim_start_matches("0x"), 16).unwrap();
    (received, sent, zxid)
}

/// A number field of the first row of the JSON output, `None` for null.
fn field_of(json: &str, name: &str) -> Option<f64> {
    let rows: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    rows[0][name].as_f64()
}

fn ops_of(json: &str) -> u64 {
    field_of(json, "ops").unwrap_or_else(|| panic!("no ops in {json}")) as u64
}

#[test]
fn every_workload_counts_only_what_the_server_did() {
    let k = Keeper::start_with("bench-tool", "", 2);
    for (workload, writes) in [
        ("get", false),
        ("set", true),
        ("create", true),
        ("delete", true),
        ("exists", false),
        ("getchildren", false),
        ("multi", true),
        ("mixed", false),
        ("churn", true),
        ("watch", false),
        ("storm", false),
        ("populate", true),
    ] {
        let (received_before, sent_before, zxid_before) = server_counters(k.port);
        let out = Command::new(env!("CARGO_BIN_EXE_keeper-bench"))
            .args(["run", "--target", &k.connect_string(), "--workload", workload, "--clients", "4", "--warmup", "0.2", "--duration", "0.8"])
            .args(["--nodes", "300", "--width", "50", "--watchers", "20", "--executors", "1", "--json", "--verify"])
            .output()
            .expect("keeper-bench runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{workload}: keeper-bench failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let ops = ops_of(&stdout);
        assert!(ops > 0, "{workload}: some operations were counted:\n{stdout}");
        let (received_after, sent_after, zxid_after) = server_counters(k.port);
        if workload == "watch" {
            assert!(sent_after - sent_before >= ops, "{workload}: {ops} notifications counted but the server sent {} packets", sent_after - sent_before);
        } else {
            assert!(
                received_after - received_before >= ops,
                "{workload}: {ops} ops counted but the server received {} requests",
                received_after - received_before
            );
        }
        if writes {
            assert!(zxid_after - zxid_before >= ops as i64, "{workload}: {ops} writes counted but the zxid moved {}", zxid_after - zxid_before);
        }
    }
}

#[test]
fn calibrate_reports_the_floors_and_the_cpu_of_a_sync() {
    let dir = std::env::temp_dir().join(format!("keeper-bench-calibrate-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_keeper-bench")).args(["calibrate", "--dir"]).arg(&dir).output().expect("keeper-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "calibrate failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for floor in ["loopback TCP round trip", "4 KiB write + fdatasync"] {
        let line = stdout.lines().find(|l| l.starts_with(floor)).unwrap_or_else(|| panic!("no {floor} line:\n{stdout}"));
        let figures: Vec<u64> = line[floor.len()..].split_whitespace().map(|f| f.parse().expect("microseconds")).collect();
        assert_eq!(figures.len(), 5, "{line}");
        assert!(figures[0] > 0 && figures.windows(2).all(|w| w[0] <= w[1]), "min <= p50 <= p99 <= p99.9 <= max: {line}");
    }
    let cpu: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("CPU per write + fdatasync (the issuing thread): "))
        .and_then(|v| v.strip_suffix(" us"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no CPU line:\n{stdout}"));
    assert!(cpu > 0.0, "a write and a sync take some CPU: {cpu}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "the sync test file is removed");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn server_cpu_is_reported_for_the_run_and_for_the_measured_window() {
    let k = Keeper::start("bench-cpu");
    let out = Command::new(env!("CARGO_BIN_EXE_keeper-bench"))
        .args(["run", "--target", &k.connect_string(), "--workload", "create", "--clients", "4", "--warmup", "0.3", "--duration", "1"])
        .args(["--executors", "1", "--json", "--server-pid", &k.pid().to_string()])
        .output()
        .expect("keeper-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "keeper-bench failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let whole = field_of(&stdout, "server_cpu_us_per_op").expect("CPU over the whole run");
    let window = field_of(&stdout, "server_cpu_us_per_op_window").expect("CPU over the measured window");
    // The window is part of the run (which also sets up, warms up and deletes
    // every node created), over the same count of operations.
    assert!(window > 0.0 && window < whole, "window {window} us/op, whole run {whole} us/op");
}

#[test]
fn the_table_is_aligned_shows_rss_and_piped_output_has_no_progress() {
    let k = Keeper::start("bench-table");
    let out = Command::new(env!("CARGO_BIN_EXE_keeper-bench"))
        .args(["run", "--target", &k.connect_string(), "--workload", "get,set", "--clients", "2", "--warmup", "1.2", "--duration", "1.2"])
        .args(["--executors", "1", "--server-pid", &k.pid().to_string()])
        .output()
        .expect("keeper-bench runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let table: Vec<&str> = stdout.lines().take(3).collect();
    assert!(table[0].starts_with("target") && table[0].ends_with("rss MiB"), "the header, with RSS:\n{stdout}");
    assert!(table.iter().all(|l| l.len() == table[0].len()), "every line as wide as the header:\n{stdout}");
    assert!(!stderr.contains("measuring") && !stderr.contains("warmup:") && !stdout.contains('\r'), "no progress into pipes:\n{stderr}");
    let help = Command::new(env!("CARGO_BIN_EXE_keeper-bench")).args(["help", "run"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for column in table[0].split_whitespace().filter(|c| !["us/op", "MiB"].contains(c)) {
        assert!(help.contains(column), "help run explains the column {column}:\n{help}");
    }
}
