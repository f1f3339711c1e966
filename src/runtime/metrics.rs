//! The Prometheus endpoint, configured as ZooKeeper's is
//! (`metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider`,
//! `metricsProvider.httpHost`, `metricsProvider.httpPort`, default 7000).
//! Shard 0 accepts on the metrics port ([`super::http`]). A `GET /metrics`
//! asks the cores for the report the four-letter words use, gathered
//! between batches like theirs, and gets it as Prometheus text
//! ([`fourlw::prometheus`](super::fourlw::prometheus)); other paths get 404.

/// The Prometheus text format ZooKeeper's provider serves.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The one path served.
pub const PATH: &str = "/metrics";
