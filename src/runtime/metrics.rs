//! The Prometheus endpoint, configured as ZooKeeper's is
//! (`metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider`,
//! `metricsProvider.httpHost`, `metricsProvider.httpPort`, default 7000).
//! Shard 0 accepts on the metrics port ([`super::http`]). A `GET /metrics`
//! asks the cores for the report the four-letter words use, gathered
//! between batches like theirs, and gets it as Prometheus text
//! ([`fourlw::prometheus`](super::fourlw::prometheus)), every family or
//! those ZooKeeper's `?name[]=` filter names; other paths get 404.

use super::{fourlw, http};
use crate::core::messages::AdminReport;

/// The Prometheus text format ZooKeeper's provider serves.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The one path served.
pub const PATH: &str = "/metrics";

/// The families a scrape's query asks for: its `name[]` parameters
/// (brackets percent-encoded or not); none: every family.
pub fn requested_names(query: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == "name[]" || k.eq_ignore_ascii_case("name%5B%5D"))
        .map(|(_, v)| v.to_string())
        .collect()
}

/// The answer to a scrape: the exposition, kept to the families `names`
/// asks for when it names any (a summary's family answers to its own name
/// and to its `_count` and `_sum`), as an HTTP response.
pub fn response(report: &AdminReport, names: &[String]) -> String {
    let text = fourlw::prometheus(report);
    if names.is_empty() {
        return http::ok(CONTENT_TYPE, &text);
    }
    let asked = |family: &str| names.iter().any(|n| n == family || n.strip_prefix(family).is_some_and(|rest| rest == "_count" || rest == "_sum"));
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut kept = String::new();
    // A family: its HELP line and what follows, up to the next HELP line.
    for family in lines.chunk_by(|_, next| !next.starts_with("# HELP ")) {
        let name = family[0].strip_prefix("# HELP ").and_then(|rest| rest.split(' ').next()).unwrap_or_default();
        if asked(name) {
            family.iter().for_each(|line| kept.push_str(line));
        }
    }
    http::ok(CONTENT_TYPE, &kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_filter_keeps_the_families_asked_for() {
        assert_eq!(requested_names("name[]=znode_count&x=1&name%5B%5D=readlatency_count"), vec!["znode_count", "readlatency_count"]);
        let body = |r: String| r.split_once("\r\n\r\n").unwrap().1.to_string();
        let all = body(response(&AdminReport::default(), &[]));
        let some = body(response(&AdminReport::default(), &["znode_count".into(), "readlatency_count".into()]));
        assert!(all.contains("# TYPE watch_count gauge") && !some.contains("watch_count"), "{some}");
        assert!(some.starts_with("# HELP znode_count znode_count\n# TYPE znode_count gauge\nznode_count 0.0\n"), "{some}");
        assert!(some.contains("readlatency_count 0.0") && some.contains("readlatency{quantile=\"0.5\",} NaN"), "{some}");
    }
}
