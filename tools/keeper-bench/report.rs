//! Output: the human table, JSON, the HdrHistogram interval log and the
//! compare table.

use crate::stats::{INTERVAL, Recorder, Summary};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use std::fmt::Write as _;
use std::path::Path;

/// One finished run, as reported.
#[derive(Debug, Clone)]
pub struct Row {
    pub target: String,
    pub workload: String,
    pub clients: usize,
    pub pipeline: usize,
    pub rate: Option<f64>,
    pub summary: Summary,
    /// Server CPU time per operation over the whole run (setup, warmup and
    /// cleanup included: an upper bound), when the server's pid was given.
    pub server_cpu_us_per_op: Option<f64>,
    /// Server CPU time inside the measured window per operation measured
    /// (timed workloads only).
    pub server_cpu_us_per_op_window: Option<f64>,
    /// Server resident memory after the run, when the pid was given.
    pub server_rss_bytes: Option<u64>,
}

/// The table header.
pub fn header() -> String {
    format!(
        "{:<12} {:<11} {:>7} {:>4} {:>8} {:>10} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>9} {:>9}",
        "target", "workload", "clients", "pipe", "rate", "ops/s", "err", "min", "p50", "p90", "p99", "p99.9", "max", "cpu us/op", "win us/op"
    )
}

/// One table line (latencies in microseconds).
pub fn line(r: &Row) -> String {
    let s = &r.summary;
    let rate = r.rate.map_or("closed".to_string(), |v| format!("{v:.0}"));
    let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    format!(
        "{:<12} {:<11} {:>7} {:>4} {:>8} {:>10.0} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>9} {:>9}",
        r.target,
        r.workload,
        r.clients,
        r.pipeline,
        rate,
        s.ops_per_sec,
        s.errors,
        s.min_us,
        s.p50_us,
        s.p90_us,
        s.p99_us,
        s.p999_us,
        s.max_us,
        us(r.server_cpu_us_per_op),
        us(r.server_cpu_us_per_op_window)
    )
}

/// Rows as a JSON array.
pub fn json(rows: &[Row]) -> String {
    let mut out = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        let s = &r.summary;
        let opt = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.3}"));
        let _ = writeln!(
            out,
            "  {{\"target\":{:?},\"workload\":{:?},\"clients\":{},\"pipeline\":{},\"rate\":{},\"ops\":{},\"ops_per_sec\":{:.1},\"errors\":{},\"latency_us\":{{\"min\":{},\"p50\":{},\"p90\":{},\"p99\":{},\"p99_9\":{},\"max\":{}}},\"server_cpu_us_per_op\":{},\"server_cpu_us_per_op_window\":{},\"server_rss_bytes\":{}}}{}",
            r.target,
            r.workload,
            r.clients,
            r.pipeline,
            opt(r.rate),
            s.ops,
            s.ops_per_sec,
            s.errors,
            s.min_us,
            s.p50_us,
            s.p90_us,
            s.p99_us,
            s.p999_us,
            s.max_us,
            opt(r.server_cpu_us_per_op),
            opt(r.server_cpu_us_per_op_window),
            r.server_rss_bytes.map_or("null".to_string(), |v| v.to_string()),
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    out.push(']');
    out
}

/// Writes the standard HdrHistogram interval log (.hlog), one histogram per second.
pub fn write_hlog(path: &Path, rec: &Recorder, tag: &str) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new().with_max_value_divisor(1.0).begin_log_with(&mut file, &mut serializer).map_err(std::io::Error::other)?;
    let tag = Tag::new(tag);
    for (i, h) in rec.intervals.iter().enumerate() {
        let start = INTERVAL * i as u32;
        log.write_histogram(h, start, INTERVAL, tag).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    }
    Ok(())
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> f64 {
    assert!(!values.is_empty(), "a median needs values");
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// A named figure read off a row.
type Figure = (&'static str, fn(&Row) -> Option<f64>);

/// The compare table: medians over rounds of each figure for A and B, and A/B.
pub fn compare_table(workload: &str, a_name: &str, b_name: &str, a: &[Row], b: &[Row]) -> String {
    let figures: [Figure; 8] = [
        ("ops/s", |r| Some(r.summary.ops_per_sec)),
        ("p50 us", |r| Some(r.summary.p50_us as f64)),
        ("p90 us", |r| Some(r.summary.p90_us as f64)),
        ("p99 us", |r| Some(r.summary.p99_us as f64)),
        ("p99.9 us", |r| Some(r.summary.p999_us as f64)),
        ("max us", |r| Some(r.summary.max_us as f64)),
        ("cpu us/op", |r| r.server_cpu_us_per_op),
        ("win us/op", |r| r.server_cpu_us_per_op_window),
    ];
    let mut out = format!("{workload}: medians over {} rounds\n{:<10} {:>14} {:>14} {:>9}\n", a.len(), "figure", a_name, b_name, "A/B");
    for (name, f) in figures {
        let mut av: Vec<f64> = a.iter().filter_map(f).collect();
        let mut bv: Vec<f64> = b.iter().filter_map(f).collect();
        if av.is_empty() || bv.is_empty() {
            continue;
        }
        let (ma, mb) = (median(&mut av), median(&mut bv));
        let ratio = if mb == 0.0 { "-".to_string() } else { format!("{:.2}", ma / mb) };
        let _ = writeln!(out, "{name:<10} {ma:>14.1} {mb:>14.1} {ratio:>9}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_json() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        let row = Row {
            target: "k".into(),
            workload: "get".into(),
            clients: 1,
            pipeline: 1,
            rate: None,
            summary: Summary { ops: 10, ops_per_sec: 5.0, p50_us: 7, ..Default::default() },
            server_cpu_us_per_op: Some(1.5),
            server_cpu_us_per_op_window: None,
            server_rss_bytes: None,
        };
        let j = json(std::slice::from_ref(&row));
        assert!(j.contains("\"ops\":10") && j.contains("\"p50\":7") && j.contains("\"server_cpu_us_per_op\":1.500") && j.contains("\"rate\":null"), "{j}");
        let t = compare_table(
            "get",
            "keeper",
            "zk",
            std::slice::from_ref(&row),
            &[Row { summary: Summary { ops_per_sec: 2.5, p50_us: 14, ..row.summary }, ..row.clone() }],
        );
        assert!(t.contains("ops/s") && t.contains("2.00") && t.contains("0.50"), "{t}");
    }
}
