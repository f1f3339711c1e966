//! The Prometheus endpoint, configured with ZooKeeper's keys, against a real
//! `keeper serve`: `/metrics` holds ZooKeeper's gauge names in the text
//! format (checked by a strict parser of the format), the values follow the
//! server (znode_count moves with creates and equals srvr's node count), and
//! other paths, methods and requests with a body get an HTTP error.

mod common;

use common::raw::RawClient;
use common::{Keeper, four_letter, http};
use std::collections::{BTreeMap, BTreeSet};

/// Parses the Prometheus text format strictly: every sample's family has
/// one TYPE line before it (a summary's `_count` and `_sum` belong to it),
/// names and label names are valid, label values quoted, values numbers
/// (or NaN). The samples by name with their labels as written.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let valid_name =
        |n: &str| !n.is_empty() && n.chars().enumerate().all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()));
    let (mut typed, mut helped) = (BTreeMap::new(), BTreeSet::new());
    let mut samples = BTreeMap::new();
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), _) => assert!(valid_name(name) && helped.insert(name.to_string()), "one HELP per family: {line}"),
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind), "a known type: {line}");
                    assert!(valid_name(name) && typed.insert(name.to_string(), kind.to_string()).is_none(), "one TYPE per family: {line}");
                }
                _ => panic!("not a line of the text format: {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("a sample: {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.strip_suffix('}').unwrap_or_else(|| panic!("a closed label set: {line}"))),
            None => (series, ""),
        };
        assert!(valid_name(name), "a valid metric name: {line}");
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (label, quoted) = pair.split_once('=').unwrap_or_else(|| panic!("label=value: {line}"));
            assert!(valid_name(label) && quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'), "a quoted label value: {line}");
        }
        let family = [name.strip_suffix("_count"), name.strip_suffix("_sum")]
            .into_iter()
            .flatten()
            .find(|f| typed.get(*f).is_some_and(|k| k == "summary"))
            .unwrap_or(name);
        assert!(typed.contains_key(family), "{name} has a TYPE line before its sample");
        let v: f64 = if value == "NaN" { f64::NAN } else { value.parse().unwrap_or_else(|_| panic!("a number: {line}")) };
        assert!(samples.insert(series.to_string(), v).is_none(), "one sample per series: {line}");
    }
    samples
}

#[test]
fn metrics_serve_zookeepers_gauges_in_the_prometheus_text_format() {
    let port = common::free_port();
    let k = Keeper::start_with(
        "metrics",
        &format!(
            "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\nmetricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={port}"
        ),
        2,
    );
    let get = "GET /metrics HTTP/1.1\r\nHost: keeper\r\n\r\n";
    let (status, headers, body) = http(port, get);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"), "{headers}");
    let before = parse_exposition(&body);
    for name in ["znode_count", "watch_count", "ephemerals_count", "approximate_data_size", "outstanding_requests", "num_alive_connections"] {
        assert!(before.contains_key(name), "ZooKeeper's gauge {name}:\n{body}");
    }
    for name in ["min_latency", "avg_latency", "max_latency", "packets_received", "packets_sent", "uptime", "open_file_descriptor_count"] {
        assert!(before.contains_key(name), "ZooKeeper's gauge {name}:\n{body}");
    }
    let mut c = RawClient::connect(k.addr());
    for i in 0..5 {
        assert_eq!(c.create(&format!("/m{i}"), b"x", 0), Some(0));
    }
    let after = parse_exposition(&http(port, get).2);
    assert_eq!(after["znode_count"], before["znode_count"] + 5.0, "znode_count follows the creates");
    let node_count = four_letter(k.port, "srvr").lines().find_map(|l| l.strip_prefix("Node count: ")).unwrap().trim().parse::<f64>().unwrap();
    assert_eq!(after["znode_count"], node_count, "the same count as srvr's");
    assert!(after["num_alive_connections"] >= 1.0);
    // ZooKeeper's counters and summaries, and keeper's own families.
    assert_eq!(after["commit_count"], before["commit_count"] + 6.0, "five creates and the session's creation commit");
    assert!(after["connection_request_count"] >= 1.0 && after["response_bytes"] > before["response_bytes"]);
    assert!(after["updatelatency_count"] >= before["updatelatency_count"] + 5.0, "{after:?}");
    assert!(after[r#"updatelatency{quantile="0.99",}"#] >= 0.0);
    assert!(after["fsynctime_count"] >= 1.0 && after["sync_processor_batch_size_count"] >= 1.0);
    assert_eq!(after[r#"keeper_request_latency_seconds_count{op="create",}"#], 5.0);
    assert!(after[r#"keeper_request_latency_seconds{op="create",quantile="0.5",}"#] > 0.0);
    assert!(after["keeper_raft_term"] >= 1.0 && after["keeper_raft_leader"] == 1.0);
    assert!(after["keeper_raft_applied_index"] >= after["keeper_raft_commit_index"] - 0.0 && after["keeper_raft_commit_index"] >= 6.0);
    // Quota gauges by namespace, from a quota set with ZooKeeper's nodes.
    assert_eq!(c.create("/zookeeper/quota/m0", b"", 0), Some(0));
    assert_eq!(c.create("/zookeeper/quota/m0/zookeeper_limits", b"count=10,bytes=-1", 0), Some(0));
    assert_eq!(c.create("/zookeeper/quota/m0/zookeeper_stats", b"count=0,bytes=0", 0), Some(0));
    let quota = parse_exposition(&http(port, get).2);
    assert_eq!(quota[r#"quota_count_limit_per_namespace{key="m0",}"#], 10.0);
    assert_eq!(quota[r#"quota_count_usage_per_namespace{key="m0",}"#], 1.0, "the quota root itself");
    let mntr = four_letter(k.port, "mntr");
    for key in
        ["zk_commit_count\t", "zk_p99_readlatency\t", "zk_avg_fsynctime\t", "zk_cnt_sync_processor_batch_size\t", "zk_m0_quota_count_limit_per_namespace\t10\n"]
    {
        assert!(mntr.contains(key), "mntr has {key:?}:\n{mntr}");
    }
    // ZooKeeper's filter: only the families named.
    let filtered = parse_exposition(&http(port, "GET /metrics?name[]=znode_count&name[]=commit_count HTTP/1.1\r\nHost: keeper\r\n\r\n").2);
    assert_eq!(filtered.keys().collect::<Vec<_>>(), ["commit_count", "znode_count"], "{filtered:?}");
    // Nothing but GET /metrics, and no request body.
    assert!(http(port, "GET / HTTP/1.1\r\n\r\n").0.contains("404"));
    assert!(http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").0.contains("405"));
    assert!(http(port, "GET /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").0.contains("413"));
}

/// Debian's Prometheus server scrapes keeper every 200 ms and answers
/// queries over what it stored: the endpoint is what a real scraper accepts.
#[test]
fn a_real_prometheus_scrapes_keeper() {
    common::require("/usr/bin/prometheus");
    let (metrics_port, web_port) = {
        let ports = common::free_ports(2);
        (ports[0], ports[1])
    };
    let k = Keeper::start_with(
        "metrics-scraped",
        &format!(
            "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\nmetricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={metrics_port}"
        ),
        1,
    );
    let mut c = RawClient::connect(k.addr());
    assert_eq!(c.create("/scraped", b"x", 0), Some(0));
    let dir = common::temp_dir("prometheus");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\nscrape_configs:\n  - job_name: keeper\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let _prometheus = common::KillOnDrop::new(
        std::process::Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus starts"),
    );
    // One value of `query` Prometheus holds for keeper, once it has one.
    let value = |query: &str| -> Option<f64> {
        std::net::TcpStream::connect(("127.0.0.1", web_port)).ok()?;
        let encoded: String =
            query.chars().map(|ch| if ch.is_ascii_alphanumeric() || ch == '_' { ch.to_string() } else { format!("%{:02X}", ch as u32) }).collect();
        let (status, _, body) = http(web_port, &format!("GET /api/v1/query?query={encoded} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"));
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = json["data"]["result"].as_array()?.first()?.clone();
        (status.contains("200") && json["status"] == "success").then(|| result["value"][1].as_str()?.parse().ok())?
    };
    let scraped = common::eventually(std::time::Duration::from_secs(30), || value("up").is_some_and(|up| up == 1.0) && value("znode_count").is_some());
    assert!(scraped, "Prometheus scraped keeper successfully (up == 1):\n{}", std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default());
    let node_count = four_letter(k.port, "srvr").lines().find_map(|l| l.strip_prefix("Node count: ")).unwrap().trim().parse::<f64>().unwrap();
    assert_eq!(value("znode_count"), Some(node_count), "the stored znode_count is srvr's node count");
    assert!(value("keeper_raft_term").is_some_and(|t| t >= 1.0));
    assert!(value("commit_count").is_some_and(|n| n >= 2.0));
    assert!(value(r#"keeper_request_latency_seconds_count{op="create"}"#).is_some_and(|n| n >= 1.0));
    let _ = std::fs::remove_dir_all(&dir);
}
