//! `--plot FILE.svg`: latency by percentile, one curve per series, on the
//! usual HdrHistogram axes (x: percentile on a log scale of 1/(1-p)).

use hdrhistogram::Histogram;
use std::fmt::Write as _;

const W: f64 = 900.0;
const H: f64 = 500.0;
const LEFT: f64 = 80.0;
const BOTTOM: f64 = 60.0;
/// The x axis runs to 99.999%.
const NINES: f64 = 5.0;
const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

/// An SVG with one latency-by-percentile curve per `(label, histogram)`.
pub fn svg(title: &str, series: &[(String, &Histogram<u64>)]) -> String {
    let max_us = series.iter().map(|(_, h)| h.max()).max().unwrap_or(1).max(1) as f64;
    let x = |nines: f64| LEFT + nines / NINES * (W - LEFT - 20.0);
    let y = |us: f64| H - BOTTOM - us / max_us * (H - BOTTOM - 40.0);
    let mut out = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n");
    let _ = writeln!(out, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"20\" font-size=\"15\">{title}</text>", LEFT);
    for k in 0..=5 {
        let label = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"][k];
        let _ = writeln!(
            out,
            "<line x1=\"{0}\" y1=\"40\" x2=\"{0}\" y2=\"{1}\" stroke=\"#ddd\"/><text x=\"{0}\" y=\"{2}\" text-anchor=\"middle\">{label}</text>",
            x(k as f64),
            H - BOTTOM,
            H - BOTTOM + 18.0
        );
    }
    for k in 0..=4 {
        let us = max_us * k as f64 / 4.0;
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#ddd\"/><text x=\"{2}\" y=\"{0}\" text-anchor=\"end\">{us:.0}</text>",
            y(us),
            W - 20.0,
            LEFT - 6.0
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">percentile</text><text x=\"18\" y=\"{}\" transform=\"rotate(-90 18 {})\" text-anchor=\"middle\">latency (us)</text>",
        (W + LEFT) / 2.0,
        H - 12.0,
        H / 2.0,
        H / 2.0
    );
    for (i, (label, h)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> = (0..=100)
            .map(|step| {
                let nines = NINES * step as f64 / 100.0;
                let q = 1.0 - 10f64.powf(-nines);
                format!("{:.1},{:.1}", x(nines), y(h.value_at_quantile(q) as f64))
            })
            .collect();
        let _ = writeln!(out, "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>", points.join(" "));
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{label}</text>",
            LEFT + 10.0,
            50.0 + 18.0 * i as f64,
            LEFT + 28.0,
            60.0 + 18.0 * i as f64
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_polyline_per_series() {
        let mut a = crate::stats::histogram();
        let mut b = crate::stats::histogram();
        for v in 1..1000 {
            a.record(v).unwrap();
            b.record(v * 2).unwrap();
        }
        let s = svg("t", &[("a".into(), &a), ("b".into(), &b)]);
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
    }
}
