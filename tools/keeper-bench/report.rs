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

/// A column of the table: its header and how a row shows in it.
type Column = (&'static str, fn(&Row) -> String);

/// The table: one line per row, each column as wide as its widest cell
/// (text left-aligned, numbers right-aligned); the RSS column only when
/// some row has it.
pub fn table(rows: &[Row]) -> String {
    fn us(v: Option<f64>) -> String {
        v.map_or("-".to_string(), |v| format!("{v:.2}"))
    }
    let mut columns: Vec<Column> = vec![
        ("target", |r| r.target.clone()),
        ("workload", |r| r.workload.clone()),
        ("clients", |r| r.clients.to_string()),
        ("pipe", |r| r.pipeline.to_string()),
        ("rate", |r| r.rate.map_or("closed".to_string(), |v| format!("{v:.0}"))),
        ("ops/s", |r| format!("{:.0}", r.summary.ops_per_sec)),
        ("err", |r| r.summary.errors.to_string()),
        ("min", |r| r.summary.min_us.to_string()),
        ("p50", |r| r.summary.p50_us.to_string()),
        ("p90", |r| r.summary.p90_us.to_string()),
        ("p99", |r| r.summary.p99_us.to_string()),
        ("p99.9", |r| r.summary.p999_us.to_string()),
        ("max", |r| r.summary.max_us.to_string()),
        ("cpu us/op", |r| us(r.server_cpu_us_per_op)),
        ("win us/op", |r| us(r.server_cpu_us_per_op_window)),
    ];
    if rows.iter().any(|r| r.server_rss_bytes.is_some()) {
        columns.push(("rss MiB", |r| r.server_rss_bytes.map_or("-".to_string(), |b| format!("{:.1}", b as f64 / (1 << 20) as f64))));
    }
    let cells: Vec<Vec<String>> = rows.iter().map(|r| columns.iter().map(|(_, cell)| cell(r)).collect()).collect();
    let widths: Vec<usize> = columns.iter().enumerate().map(|(i, (h, _))| cells.iter().map(|c| c[i].len()).chain([h.len()]).max().unwrap_or(0)).collect();
    const TEXT_COLUMNS: usize = 2;
    let line = |texts: Vec<&str>| {
        let parts: Vec<String> =
            texts.iter().zip(&widths).enumerate().map(|(i, (t, w))| if i < TEXT_COLUMNS { format!("{t:<w$}") } else { format!("{t:>w$}") }).collect();
        parts.join(" ").trim_end().to_string() + "\n"
    };
    let mut out = line(columns.iter().map(|(h, _)| *h).collect());
    for c in &cells {
        out += &line(c.iter().map(String::as_str).collect());
    }
    out
}

/// A row as JSON reports it.
#[derive(serde::Serialize)]
struct JsonRow<'a> {
    target: &'a str,
    workload: &'a str,
    clients: usize,
    pipeline: usize,
    rate: Option<f64>,
    ops: u64,
    ops_per_sec: f64,
    errors: u64,
    latency_us: JsonLatency,
    server_cpu_us_per_op: Option<f64>,
    server_cpu_us_per_op_window: Option<f64>,
    server_rss_bytes: Option<u64>,
}

#[derive(serde::Serialize)]
struct JsonLatency {
    min: u64,
    p50: u64,
    p90: u64,
    p99: u64,
    p99_9: u64,
    max: u64,
}

/// Rows as a JSON array.
pub fn json(rows: &[Row]) -> String {
    let rows: Vec<JsonRow<'_>> = rows
        .iter()
        .map(|r| {
            let s = &r.summary;
            JsonRow {
                target: &r.target,
                workload: &r.workload,
                clients: r.clients,
                pipeline: r.pipeline,
                rate: r.rate,
                ops: s.ops,
                ops_per_sec: s.ops_per_sec,
                errors: s.errors,
                latency_us: JsonLatency { min: s.min_us, p50: s.p50_us, p90: s.p90_us, p99: s.p99_us, p99_9: s.p999_us, max: s.max_us },
                server_cpu_us_per_op: r.server_cpu_us_per_op,
                server_cpu_us_per_op_window: r.server_cpu_us_per_op_window,
                server_rss_bytes: r.server_rss_bytes,
            }
        })
        .collect();
    serde_json::to_string_pretty(&rows).expect("rows serialize")
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
        let j: serde_json::Value = serde_json::from_str(&json(std::slice::from_ref(&row))).unwrap();
        assert_eq!((j[0]["ops"].as_u64(), j[0]["latency_us"]["p50"].as_u64()), (Some(10), Some(7)), "{j}");
        assert_eq!((j[0]["server_cpu_us_per_op"].as_f64(), j[0]["rate"].is_null()), (Some(1.5), true), "{j}");
        let long = Row { target: "127.0.0.1:26181,127.0.0.1:26182".into(), server_rss_bytes: Some(20 << 20), ..row.clone() };
        let t = table(&[row.clone(), long]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0].len(), lines[2].len(), "every line as wide:\n{t}");
        assert!(lines[0].ends_with("rss MiB") && lines[2].ends_with("20.0") && lines[1].ends_with('-'), "{t}");
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
