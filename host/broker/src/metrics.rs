//! Node-wide counters and the fsync latency histogram, rendered in the
//! Prometheus text format by `GET /metrics`. Plain atomics: recording a sample
//! on the append path must cost a few nanoseconds and take no lock.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the fsync latency buckets, in seconds.
const FSYNC_BUCKETS_S: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
];

/// Upper bounds of the handler-call latency buckets, in seconds (1 µs to 1 s).
pub const HANDLER_BUCKETS_S: [f64; 16] = [
    0.000_001, 0.000_002, 0.000_005, 0.000_01, 0.000_02, 0.000_05, 0.000_1, 0.000_2, 0.000_5,
    0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 1.0,
];

/// A latency histogram with fixed buckets; recording is three relaxed adds.
#[derive(Debug)]
pub struct Histogram {
    bounds_s: &'static [f64],
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    /// Buckets for fsync latencies.
    fn default() -> Self {
        Self::with_bounds(&FSYNC_BUCKETS_S)
    }
}

impl Histogram {
    pub fn with_bounds(bounds_s: &'static [f64]) -> Self {
        Self {
            bounds_s,
            buckets: bounds_s.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = self.bounds_s.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// Mean in seconds (0 when empty).
    pub fn mean_s(&self) -> f64 {
        let n = self.count();
        if n == 0 {
            0.0
        } else {
            self.sum_ns.load(Relaxed) as f64 / 1e9 / n as f64
        }
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1), in
    /// seconds: an upper estimate, as precise as the buckets. `None` when
    /// empty or when the quantile lies past the last bucket.
    pub fn quantile_upper_s(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((n as f64) * q).ceil().max(1.0) as u64;
        let mut cumulative = 0;
        for (bound, b) in self.bounds_s.iter().zip(self.buckets.iter()) {
            cumulative += b.load(Relaxed);
            if cumulative >= rank {
                return Some(*bound);
            }
        }
        None
    }

    /// Writes the histogram; `labels` is empty or `key="value",…` without braces.
    pub fn render_with(&self, name: &str, labels: &str, out: &mut String) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, b) in self.bounds_s.iter().zip(self.buckets.iter()) {
            cumulative += b.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}",
            self.sum_ns.load(Relaxed) as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        self.render_with(name, "", out);
    }
}

/// Counters that belong to the node rather than to one stream.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    pub fsyncs: AtomicU64,
    pub fsync_latency: Histogram,
    pub publishes_rejected_backpressure: AtomicU64,
    pub http_requests: AtomicU64,
}

/// Counters of one stream.
#[derive(Debug, Default)]
pub struct StreamMetrics {
    pub appends: AtomicU64,
    pub append_bytes: AtomicU64,
    pub duplicates: AtomicU64,
    pub append_errors: AtomicU64,
}

/// Writes `# HELP`/`# TYPE` once for a metric family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a label value per the exposition format.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl NodeMetrics {
    pub fn render(&self, out: &mut String) {
        family(
            out,
            "sluice_fsyncs_total",
            "counter",
            "fdatasync calls on stream logs.",
        );
        let _ = writeln!(out, "sluice_fsyncs_total {}", self.fsyncs.load(Relaxed));
        self.fsync_latency.render(
            "sluice_fsync_seconds",
            "Latency of fdatasync on stream logs.",
            out,
        );
        family(
            out,
            "sluice_publishes_rejected_total",
            "counter",
            "Publishes refused with 429 because a stream's queue was full.",
        );
        let _ = writeln!(
            out,
            "sluice_publishes_rejected_total {}",
            self.publishes_rejected_backpressure.load(Relaxed)
        );
        family(
            out,
            "sluice_http_requests_total",
            "counter",
            "HTTP requests served.",
        );
        let _ = writeln!(
            out,
            "sluice_http_requests_total {}",
            self.http_requests.load(Relaxed)
        );
    }
}
