//! Four-letter words: recognising them as the first bytes of a connection
//! and rendering their answers in ZooKeeper's formats, so tools that parse
//! them (zktop, Prometheus exporters reading mntr) keep working.
//!
//! Rendering takes an [`AdminReport`] gathered from every core; the few
//! host facts a word prints (directory sizes, open descriptors, environment)
//! are read here, on the shard answering the word, never on the broadcast core.

use crate::config::Config;
use crate::core::messages::{AdminQuery, AdminReport, ConnReport, Histogram, ServeMode, ServerCounters};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};

/// The version string servers print: ZooKeeper's format, with our name.
pub const VERSION: &str = concat!("3.9.5-keeper-", env!("CARGO_PKG_VERSION"), ", built on ", env!("KEEPER_BUILD_DATE"));

/// Words keeper answers.
const WORDS: &[&str] =
    &["ruok", "isro", "srvr", "stat", "mntr", "conf", "cons", "envi", "wchs", "wchc", "wchp", "dump", "dirs", "crst", "srst", "hash", "gtmk", "stmk"];

/// `stmk`: the word is followed by the new mask, a big-endian long.
pub const SET_TRACE_MASK: &str = "stmk";

/// ZooKeeper's trace mask (`gtmk` reads it, `stmk` sets it; 306 by default:
/// client requests, server packets, sessions and warnings). keeper keeps it
/// for the tools that set and read it; it selects nothing, as keeper has no
/// trace log.
static TRACE_MASK: AtomicI64 = AtomicI64::new(306);

/// `gtmk` and `stmk` (with its mask): the mask, as ZooKeeper prints it
/// (digits, no newline).
pub fn trace_mask(word: &str, new_mask: Option<i64>) -> Option<String> {
    match (word, new_mask) {
        ("gtmk", _) => Some(TRACE_MASK.load(Ordering::Relaxed).to_string()),
        ("stmk", Some(mask)) => {
            TRACE_MASK.store(mask, Ordering::Relaxed);
            Some(mask.to_string())
        }
        _ => None,
    }
}

/// The word spelled by a connection's first four bytes, if it is one.
pub fn parse(first: &[u8]) -> Option<&'static str> {
    WORDS.iter().copied().find(|w| w.as_bytes() == first)
}

/// Answers that need no report: ruok, and isro (`ro` in read-only mode, as ZooKeeper's; else `rw`).
pub fn immediate(word: &str, serve: ServeMode) -> Option<&'static str> {
    match word {
        "ruok" => Some("imok"),
        "isro" => Some(if serve == ServeMode::ReadOnly { "ro" } else { "rw" }),
        _ => None,
    }
}

/// What a server that does not serve clients answers to a word that needs a report.
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// The report a word needs.
pub fn query_for(word: &str) -> AdminQuery {
    match word {
        "crst" => AdminQuery::ResetConnections,
        "srst" => AdminQuery::ResetServer,
        "hash" => AdminQuery::Digest,
        _ => AdminQuery::Report,
    }
}

/// The server's counters: every shard's, merged.
pub(crate) fn counters(report: &AdminReport) -> ServerCounters {
    let mut total = ServerCounters::default();
    for shard in &report.shards {
        total.merge(&shard.counters);
    }
    total
}

/// Every shard's client connections.
pub(crate) fn conns(report: &AdminReport) -> impl Iterator<Item = &ConnReport> {
    report.shards.iter().flat_map(|s| s.conns.iter())
}

/// Java's `Double.toString` of a value rounded half-up to 4 decimals.
fn java_double(v: f64) -> String {
    let rounded = (v * 10_000.0).round() / 10_000.0;
    if rounded.fract() == 0.0 { format!("{rounded:.1}") } else { format!("{rounded}") }
}

/// The body srvr and stat share, from the latency line on.
fn server_body(report: &AdminReport) -> String {
    let c = counters(report);
    let mut out = String::new();
    let _ = writeln!(out, "Latency min/avg/max: {}/{}/{}", c.latency.min_ms, java_double(c.latency.avg_ms()), c.latency.max_ms);
    let _ = writeln!(out, "Received: {}", c.packets_received);
    let _ = writeln!(out, "Sent: {}", c.packets_sent);
    let _ = writeln!(out, "Connections: {}", conns(report).count());
    let _ = writeln!(out, "Outstanding: {}", c.outstanding);
    let _ = writeln!(out, "Zxid: 0x{:x}", report.last_zxid);
    let _ = writeln!(out, "Mode: {}", report.mode);
    let _ = writeln!(out, "Node count: {}", report.node_count);
    out
}

fn peer_text(peer: &str) -> String {
    format!("/{peer}")
}

fn brief_conn(c: &ConnReport) -> String {
    format!(" {}[1](queued={},recved={},sent={})", peer_text(&c.peer), c.queued, c.received, c.sent)
}

fn full_conn(c: &ConnReport) -> String {
    let mut line = format!(" {}[1](queued={},recved={},sent={}", peer_text(&c.peer), c.queued, c.received, c.sent);
    if c.session_id != 0 {
        let _ = write!(line, ",sid=0x{:x},lop={},est={},to={}", c.session_id, c.last_op, c.established_ms, c.timeout_ms);
        if c.last_cxid >= 0 {
            let _ = write!(line, ",lcxid=0x{:x}", c.last_cxid);
        }
        let _ = write!(
            line,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            c.last_zxid, c.last_response_ms, c.last_latency_ms, c.min_latency_ms, c.avg_latency_ms, c.max_latency_ms
        );
    }
    line.push(')');
    line
}

/// Data watches by session id, for wchc.
pub(crate) fn watches_by_session(report: &AdminReport) -> BTreeMap<i64, Vec<&str>> {
    let mut by_session: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for shard in &report.shards {
        for (path, sessions) in &shard.data_watches {
            for s in sessions {
                by_session.entry(*s).or_default().push(path);
            }
        }
    }
    by_session
}

/// Total size of the files under `dir` (dirs, conf): walked only for the words that print it.
pub(crate) fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Renders a word's answer.
pub fn render(word: &str, report: &AdminReport, cfg: &Config, _peer: SocketAddr) -> String {
    let mut out = String::new();
    match word {
        "srvr" => {
            let _ = writeln!(out, "Zookeeper version: {VERSION}");
            out.push_str(&server_body(report));
        }
        "stat" => {
            let _ = writeln!(out, "Zookeeper version: {VERSION}");
            out.push_str("Clients:\n");
            for c in conns(report) {
                let _ = writeln!(out, "{}", brief_conn(c));
            }
            out.push('\n');
            out.push_str(&server_body(report));
        }
        "cons" => {
            for c in conns(report) {
                let _ = writeln!(out, "{}", full_conn(c));
            }
            out.push('\n');
        }
        "crst" => out.push_str("Connection stats reset.\n"),
        "srst" => out.push_str("Server stats reset.\n"),
        // keeper's own form (ZooKeeper 3.8 prints its digest history, empty by default):
        // the zxid this server has applied, and a digest of its tree there.
        "hash" => {
            let _ = writeln!(out, "{:#x}: {:016x}", report.last_zxid, report.digest.expect("hash reports carry a digest"));
        }
        "mntr" => out.push_str(&mntr(report)),
        "conf" => {
            let _ = writeln!(out, "clientPort={}", cfg.client_addr.port());
            let _ = writeln!(out, "secureClientPort={}", cfg.secure_client_addr.map_or(-1, |a| a.port() as i32));
            let _ = writeln!(out, "dataDir={}", cfg.data_dir.join(crate::storage::log::DATA_SUBDIR).display());
            let _ = writeln!(out, "dataDirSize={}", dir_bytes(&cfg.data_dir));
            let _ = writeln!(out, "dataLogDir={}", cfg.data_log_dir.join(crate::storage::log::DATA_SUBDIR).display());
            let _ = writeln!(out, "dataLogSize={}", dir_bytes(&cfg.data_log_dir));
            let _ = writeln!(out, "tickTime={}", cfg.tick_ms);
            let _ = writeln!(out, "maxClientCnxns={}", cfg.max_client_cnxns);
            let _ = writeln!(out, "minSessionTimeout={}", cfg.min_session_timeout_ms);
            let _ = writeln!(out, "maxSessionTimeout={}", cfg.max_session_timeout_ms);
            let _ = writeln!(out, "clientPortListenBacklog=-1");
            let _ = writeln!(out, "serverId={}", if cfg.servers.is_empty() { 0 } else { cfg.my_id });
        }
        "envi" => {
            out.push_str("Environment:\n");
            for (k, v) in environment() {
                let _ = writeln!(out, "{k}={v}");
            }
        }
        "wchs" => {
            let by_session = watches_by_session(report);
            let paths: usize = report.shards.iter().map(|s| s.data_watches.len()).sum();
            let total: usize = by_session.values().map(Vec::len).sum();
            let _ = writeln!(out, "{} connections watching {paths} paths", by_session.len());
            let _ = writeln!(out, "Total watches:{total}");
        }
        "wchc" => {
            for (session, paths) in watches_by_session(report) {
                let _ = writeln!(out, "0x{session:x}");
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out.push('\n');
        }
        "wchp" => {
            let mut by_path: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
            for shard in &report.shards {
                for (path, sessions) in &shard.data_watches {
                    by_path.entry(path).or_default().extend(sessions);
                }
            }
            for (path, sessions) in by_path {
                let _ = writeln!(out, "{path}");
                for s in sessions {
                    let _ = writeln!(out, "\t0x{s:x}");
                }
            }
            out.push('\n');
        }
        "dump" => {
            out.push_str("SessionTracker dump:\n");
            let mut buckets: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for (id, _, at) in &report.sessions {
                buckets.entry(*at).or_default().push(*id);
            }
            let _ = writeln!(out, "Session Sets ({})/({}):", buckets.len(), report.sessions.len());
            for (at, ids) in &buckets {
                let _ = writeln!(out, "{} expire at {} ms since epoch:", ids.len(), at);
                for id in ids {
                    let _ = writeln!(out, "\t0x{id:x}");
                }
            }
            out.push_str("ephemeral nodes dump:\n");
            let _ = writeln!(out, "Sessions with Ephemerals ({}):", report.ephemerals.len());
            let mut ephemerals = report.ephemerals.clone();
            ephemerals.sort();
            for (session, paths) in &ephemerals {
                let _ = writeln!(out, "0x{session:x}:");
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out.push_str("Connections dump:\n");
            let _ = writeln!(out, "Connections Sets (1)/({}):", conns(report).count());
            for c in conns(report) {
                let _ = writeln!(out, "\tip: {} sessionId: 0x{:x}", peer_text(&c.peer), c.session_id);
            }
        }
        "dirs" => {
            let _ = writeln!(out, "datadir_size: {}", dir_bytes(&cfg.data_dir));
            let _ = writeln!(out, "logdir_size: {}", dir_bytes(&cfg.data_log_dir));
        }
        _ => {}
    }
    out
}

/// envi's facts, in ZooKeeper's order (the Java ones it cannot have are `<NA>`).
pub(crate) fn environment() -> Vec<(&'static str, String)> {
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "<NA>".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "<NA>".into());
    let os_version = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|h| h.trim().to_string()).unwrap_or_else(|_| "<NA>".into());
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| "<NA>".into());
    vec![
        ("zookeeper.version", VERSION.to_string()),
        ("host.name", host),
        ("java.version", "<NA>".into()),
        ("os.name", "Linux".into()),
        ("os.arch", std::env::consts::ARCH.into()),
        ("os.version", os_version),
        ("user.name", env("USER")),
        ("user.home", env("HOME")),
        ("user.dir", cwd),
    ]
}

/// mntr: ZooKeeper's gauges, counters and summaries, one `zk_<key>\t<value>` line each.
fn mntr(report: &AdminReport) -> String {
    monitor_rows(report).into_iter().map(|(k, v)| format!("zk_{k}\t{v}\n")).collect()
}

/// Everything mntr (and the AdminServer's monitor) shows, keys without
/// `zk_`: gauges, the quota gauge sets (`<namespace>_<name>`), counters,
/// then summaries, in ZooKeeper's order of kinds.
pub(crate) fn monitor_rows(report: &AdminReport) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = gauge_rows(report).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    for q in &report.quotas {
        rows.extend(quota_gauges(q).into_iter().map(|(name, v)| (format!("{}_{name}", q.namespace), v.to_string())));
    }
    rows.extend(counter_rows(report).into_iter().map(|(k, v)| (k.to_string(), v.to_string())));
    for summary in summaries(report) {
        rows.extend(summary.mntr_rows());
    }
    rows
}

/// ZooKeeper's counters (`ServerMetrics`) that keeper keeps, by its names.
fn counter_rows(report: &AdminReport) -> Vec<(&'static str, u64)> {
    let (c, b) = (counters(report), &report.broadcast);
    vec![
        ("bytes_received_count", c.bytes_received),
        ("response_bytes", c.response_bytes),
        ("connection_request_count", c.connections_accepted),
        ("connection_rejected", c.connections_refused),
        ("commit_count", b.commits),
        ("proposal_count", b.proposals),
        ("looking_count", b.elections),
        ("snap_count", b.snapshots_sent),
    ]
}

/// ZooKeeper's quota gauge sets for one namespace.
fn quota_gauges(q: &crate::core::tree::NamespaceQuota) -> [(&'static str, i64); 4] {
    [
        ("quota_count_limit_per_namespace", q.count_limit),
        ("quota_bytes_limit_per_namespace", q.bytes_limit),
        ("quota_count_usage_per_namespace", q.count_usage),
        ("quota_bytes_usage_per_namespace", q.bytes_usage),
    ]
}

/// A distribution mntr and /metrics show under ZooKeeper's name: ADVANCED
/// summaries have more quantiles; `per_unit` values of the histogram make
/// one of ZooKeeper's unit (1000 microseconds to its milliseconds).
struct Summary {
    name: &'static str,
    advanced: bool,
    hist: Histogram,
    per_unit: f64,
}

/// ZooKeeper's summaries keeper keeps.
fn summaries(report: &AdminReport) -> Vec<Summary> {
    let c = counters(report);
    let b = &report.broadcast;
    vec![
        Summary { name: "readlatency", advanced: true, hist: c.op_latencies.merged(false), per_unit: 1000.0 },
        Summary { name: "updatelatency", advanced: true, hist: c.op_latencies.merged(true), per_unit: 1000.0 },
        Summary { name: "fsynctime", advanced: false, hist: b.sync_micros.clone(), per_unit: 1000.0 },
        Summary { name: "sync_processor_batch_size", advanced: false, hist: b.batch_sizes.clone(), per_unit: 1.0 },
    ]
}

impl Summary {
    /// The quantiles /metrics gives (ZooKeeper's Prometheus summaries).
    fn quantiles(&self) -> &'static [f64] {
        if self.advanced { &[0.5, 0.9, 0.99] } else { &[0.5] }
    }

    /// In ZooKeeper's unit.
    fn value(&self, raw: u64) -> u64 {
        (raw as f64 / self.per_unit).round() as u64
    }

    fn sum(&self) -> f64 {
        total(&self.hist, self.per_unit)
    }

    /// mntr's rows, as ZooKeeper's default provider prints them:
    /// avg/min/max/cnt/sum, and p50/p95/p99/p999 for ADVANCED ones.
    fn mntr_rows(&self) -> Vec<(String, String)> {
        let (n, h) = (self.name, &self.hist);
        let empty = h.is_empty();
        let at = |q: f64| if empty { 0 } else { self.value(h.value_at_quantile(q)) };
        let mut rows = vec![
            (format!("avg_{n}"), java_double(if empty { 0.0 } else { h.mean() / self.per_unit })),
            (format!("min_{n}"), (if empty { 0 } else { self.value(h.min()) }).to_string()),
            (format!("max_{n}"), (if empty { 0 } else { self.value(h.max()) }).to_string()),
            (format!("cnt_{n}"), h.len().to_string()),
            (format!("sum_{n}"), (self.sum().round() as u64).to_string()),
        ];
        if self.advanced {
            for (label, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)] {
                rows.push((format!("{label}_{n}"), at(q).to_string()));
            }
        }
        rows
    }
}

/// Writes one Prometheus summary family: `name{labels,quantile="q",} v`
/// for each quantile (NaN with no observations), then `_count` and `_sum`;
/// `scale` turns the histogram's values into the family's unit.
fn write_summary(out: &mut String, name: &str, labels: &str, hist: &Histogram, quantiles: &[f64], scale: f64) {
    for q in quantiles {
        let v = if hist.is_empty() { f64::NAN } else { hist.value_at_quantile(*q) as f64 / scale };
        let _ = writeln!(out, "{name}{{{labels}quantile=\"{q}\",}} {}", prometheus_number(v));
    }
    let set = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_count{set} {:?}", hist.len() as f64);
    let _ = writeln!(out, "{name}_sum{set} {}", prometheus_number(total(hist, scale)));
}

/// The sum of a histogram's values, over `scale` (HDR histograms keep no
/// exact sum: the mean times the count).
fn total(hist: &Histogram, scale: f64) -> f64 {
    hist.mean() * hist.len() as f64 / scale
}

/// A sample's value in the text format (`NaN` as Prometheus spells it).
fn prometheus_number(v: f64) -> String {
    if v.is_nan() { "NaN".into() } else { format!("{v:?}") }
}

fn family(out: &mut String, name: &str, kind: &str) {
    let _ = write!(out, "# HELP {name} {name}\n# TYPE {name} {kind}\n");
}

/// ZooKeeper's server gauges (mntr's first rows; keys without `zk_`), and
/// the text-only `version`, `server_state` and `peer_state`.
pub(crate) fn gauge_rows(report: &AdminReport) -> Vec<(&'static str, String)> {
    let c = counters(report);
    let watch_count: usize = report.shards.iter().map(|s| s.watch_count).sum();
    let ephemerals: usize = report.ephemerals.iter().map(|(_, p)| p.len()).sum();
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let max_fds = {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit fills a plain struct.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        lim.rlim_cur
    };
    let mut rows: Vec<(&str, String)> = vec![
        ("version", VERSION.to_string()),
        ("server_state", report.mode.into()),
        ("ephemerals_count", ephemerals.to_string()),
        ("num_alive_connections", conns(report).count().to_string()),
        ("avg_latency", java_double(c.latency.avg_ms())),
        ("outstanding_requests", c.outstanding.to_string()),
        ("znode_count", report.node_count.to_string()),
        ("global_sessions", report.sessions.len().to_string()),
        ("packets_sent", c.packets_sent.to_string()),
        ("packets_received", c.packets_received.to_string()),
        ("watch_count", watch_count.to_string()),
        ("auth_failed_count", c.auth_failed.to_string()),
        ("min_latency", c.latency.min_ms.to_string()),
        ("max_file_descriptor_count", max_fds.to_string()),
        ("approximate_data_size", report.approximate_data_size.to_string()),
        ("open_file_descriptor_count", open_fds.to_string()),
        ("local_sessions", "0".into()),
        ("uptime", report.uptime_ms.to_string()),
        ("max_latency", c.latency.max_ms.to_string()),
        ("non_mtls_remote_conn_count", "0".into()),
        ("non_mtls_local_conn_count", "0".into()),
        ("last_client_response_size", c.response_sizes.last.to_string()),
        ("min_client_response_size", c.response_sizes.min.to_string()),
        ("max_client_response_size", c.response_sizes.max.to_string()),
        ("connection_drop_probability", "0.0".into()),
        ("outstanding_tls_handshake", "0".into()),
    ];
    if let Some(e) = &report.ensemble {
        rows.push(("peer_state", e.peer_state.into()));
        rows.push(("quorum_size", e.quorum_size.to_string()));
    }
    if let Some(l) = report.ensemble.as_ref().and_then(|e| e.leader.as_ref()) {
        rows.extend([
            ("learners", l.learners.to_string()),
            // ZooKeeper 3.4's name for the learner count, which older exporters still read.
            ("followers", l.learners.to_string()),
            ("synced_followers", l.synced_followers.to_string()),
            ("synced_non_voting_followers", "0".into()),
            ("synced_observers", l.synced_observers.to_string()),
            ("pending_syncs", l.pending_syncs.to_string()),
            ("leader_uptime", l.uptime_ms.to_string()),
            ("last_proposal_size", l.last_proposal_size.to_string()),
            ("min_proposal_size", l.min_proposal_size.to_string()),
            ("max_proposal_size", l.max_proposal_size.to_string()),
        ]);
    }
    rows
}

/// The word the Prometheus endpoint asks the report for (never read from a client).
pub const METRICS: &str = "metrics";

/// What `/metrics` serves, in the Prometheus text format 0.0.4, under
/// ZooKeeper's names and types where ZooKeeper has the metric (its
/// `PrometheusMetricsProvider`: mntr's numbers as gauges, without `zk_`,
/// and 3.4's `followers` alias left out; its counters; its summaries with
/// their quantiles; the quota gauge sets by namespace), then keeper's own
/// under `keeper_`: request latency by operation, the group-commit batch,
/// raft's state, expired sessions.
pub fn prometheus(report: &AdminReport) -> String {
    let mut out = String::new();
    for (name, value) in gauge_rows(report) {
        let Ok(v) = value.parse::<f64>() else { continue };
        if name == "followers" {
            continue;
        }
        family(&mut out, name, "gauge");
        let _ = writeln!(out, "{name} {v:?}");
    }
    for (i, (name, _)) in quota_gauges(&Default::default()).into_iter().enumerate() {
        family(&mut out, name, "gauge");
        for q in &report.quotas {
            let _ = writeln!(out, "{name}{{key=\"{}\",}} {:?}", q.namespace, quota_gauges(q)[i].1 as f64);
        }
    }
    for (name, v) in counter_rows(report) {
        family(&mut out, name, "counter");
        let _ = writeln!(out, "{name} {:?}", v as f64);
    }
    for s in summaries(report) {
        family(&mut out, s.name, "summary");
        write_summary(&mut out, s.name, "", &s.hist, s.quantiles(), s.per_unit);
    }
    let c = counters(report);
    family(&mut out, "keeper_request_latency_seconds", "summary");
    for (op, hist) in &c.op_latencies.0 {
        write_summary(&mut out, "keeper_request_latency_seconds", &format!("op=\"{}\",", op.name()), hist, &[0.5, 0.9, 0.99, 0.999], 1e6);
    }
    let b = &report.broadcast;
    family(&mut out, "keeper_commit_batch_entries", "summary");
    write_summary(&mut out, "keeper_commit_batch_entries", "", &b.batch_sizes, &[0.5, 0.9, 0.99], 1.0);
    let leads = matches!(report.mode, "leader" | "standalone");
    for (name, kind, v) in [
        ("keeper_raft_term", "gauge", b.term),
        ("keeper_raft_commit_index", "gauge", b.commit_index),
        ("keeper_raft_applied_index", "gauge", b.applied_index),
        ("keeper_raft_leader", "gauge", u64::from(leads)),
        ("keeper_sessions_expired_total", "counter", b.sessions_expired),
    ] {
        family(&mut out, name, kind);
        let _ = writeln!(out, "{name} {:?}", v as f64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::messages::{EnsembleReport, LeaderReport};

    #[test]
    fn words_and_formats() {
        assert_eq!(parse(b"ruok"), Some("ruok"));
        assert_eq!(parse(&[0, 0, 0, 45]), None);
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(1.26274), "1.2627");
        let report = AdminReport { last_zxid: 0x45, node_count: 5, mode: "standalone", ..Default::default() };
        let srvr = render("srvr", &report, &Config::default(), "127.0.0.1:1".parse().unwrap());
        assert!(srvr.contains("Zxid: 0x45\nMode: standalone\nNode count: 5\n"), "{srvr}");
        let mntr = render("mntr", &report, &Config::default(), "127.0.0.1:1".parse().unwrap());
        assert!(mntr.starts_with("zk_version\t3.9.5-keeper-"), "{mntr}");
        assert!(mntr.contains("zk_server_state\tstandalone\n"));
        assert!(!mntr.contains("zk_peer_state"), "a standalone server has no peer state: {mntr}");
        let leader =
            LeaderReport { learners: 2, synced_followers: 1, last_proposal_size: 48, min_proposal_size: 40, max_proposal_size: 225, ..Default::default() };
        let report = AdminReport {
            mode: "leader",
            ensemble: Some(EnsembleReport { peer_state: "leading - broadcast", quorum_size: 3, leader_id: 1, leader: Some(leader) }),
            ..report
        };
        let mntr = render("mntr", &report, &Config::default(), "127.0.0.1:1".parse().unwrap());
        for row in [
            "zk_peer_state\tleading - broadcast\n",
            "zk_quorum_size\t3\n",
            "zk_learners\t2\n",
            "zk_followers\t2\n",
            "zk_synced_followers\t1\n",
            "zk_max_proposal_size\t225\n",
        ] {
            assert!(mntr.contains(row), "{row:?} in {mntr}");
        }
    }
}
