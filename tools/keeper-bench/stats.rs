//! Latency recording: an HdrHistogram per executor for the whole measured
//! window plus one per one-second interval (for the .hlog interval log),
//! merged after the run.

use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// Latencies are recorded in microseconds, up to an hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// The length of one interval in the interval log.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// What one executor measured.
#[derive(Clone)]
pub struct Recorder {
    pub total: Histogram<u64>,
    pub intervals: Vec<Histogram<u64>>,
    pub errors: u64,
    /// Sessions re-attached to another server after theirs closed the connection.
    pub reconnects: u64,
    measure_from: Instant,
    measure_until: Instant,
}

impl Recorder {
    /// Records only what completes in `[measure_from, measure_until)`.
    pub fn new(measure_from: Instant, measure_until: Instant) -> Recorder {
        Recorder { total: histogram(), intervals: Vec::new(), errors: 0, reconnects: 0, measure_from, measure_until }
    }

    /// Records one successful operation that started at `start` and completed at `now`.
    pub fn record(&mut self, start: Instant, now: Instant) {
        if now < self.measure_from || now >= self.measure_until {
            return;
        }
        let us = now.saturating_duration_since(start).as_micros().max(1) as u64;
        self.total.saturating_record(us);
        let i = (now - self.measure_from).as_secs() as usize;
        while self.intervals.len() <= i {
            self.intervals.push(histogram());
        }
        self.intervals[i].saturating_record(us);
    }

    /// Adds another executor's recording.
    pub fn merge(&mut self, other: &Recorder) {
        self.total.add(&other.total).expect("histograms share bounds");
        self.errors += other.errors;
        self.reconnects += other.reconnects;
        for (i, h) in other.intervals.iter().enumerate() {
            while self.intervals.len() <= i {
                self.intervals.push(histogram());
            }
            self.intervals[i].add(h).expect("histograms share bounds");
        }
    }

    /// The measured window's length.
    pub fn window(&self) -> Duration {
        self.measure_until - self.measure_from
    }
}

/// The figures a run reports.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    pub ops: u64,
    pub ops_per_sec: f64,
    pub errors: u64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Summary {
    /// Summarises a histogram measured over `window`.
    pub fn of(h: &Histogram<u64>, window: Duration, errors: u64) -> Summary {
        let secs = window.as_secs_f64().max(1e-9);
        Summary {
            ops: h.len(),
            ops_per_sec: h.len() as f64 / secs,
            errors,
            min_us: h.min(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_recorders_adds_counts_and_intervals() {
        let t0 = Instant::now();
        let mut a = Recorder::new(t0, t0 + Duration::from_secs(10));
        let mut b = a.clone();
        a.record(t0, t0 + Duration::from_micros(100));
        b.record(t0, t0 + Duration::from_millis(1500));
        b.record(t0 + Duration::from_secs(20), t0 + Duration::from_secs(20));
        a.merge(&b);
        assert_eq!(a.total.len(), 2, "the record after the window is dropped");
        assert_eq!(a.intervals.len(), 2);
        assert_eq!(a.intervals[1].len(), 1);
        let s = Summary::of(&a.total, Duration::from_secs(2), 0);
        assert_eq!(s.ops, 2);
        assert!((s.ops_per_sec - 1.0).abs() < 1e-9);
        assert!(s.max_us >= 1_499_000 && s.min_us <= 101);
    }
}
