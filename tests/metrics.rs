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
/// one TYPE line before it, names are valid, values are numbers. The
/// samples by name.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let valid_name =
        |n: &str| !n.is_empty() && n.chars().enumerate().all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()));
    let (mut typed, mut helped) = (BTreeSet::new(), BTreeSet::new());
    let mut samples = BTreeMap::new();
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("#"), Some("HELP"), Some(name), _) => assert!(valid_name(name) && helped.insert(name.to_string()), "one HELP per family: {line}"),
            (Some("#"), Some("TYPE"), Some(name), Some(kind)) => {
                assert!(["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind), "a known type: {line}");
                assert!(valid_name(name) && typed.insert(name.to_string()), "one TYPE per family: {line}");
            }
            (Some(name), Some(value), None, None) => {
                assert!(valid_name(name), "a valid metric name: {line}");
                assert!(typed.contains(name), "{name} has a TYPE line before its sample");
                let v: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
                assert!(samples.insert(name.to_string(), v).is_none(), "one sample per unlabelled family: {line}");
            }
            _ => panic!("not a line of the text format: {line:?}"),
        }
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
    // Nothing but GET /metrics, and no request body.
    assert!(http(port, "GET / HTTP/1.1\r\n\r\n").0.contains("404"));
    assert!(http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").0.contains("405"));
    assert!(http(port, "GET /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").0.contains("413"));
}
