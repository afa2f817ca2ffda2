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

#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; FSYNC_BUCKETS_S.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = FSYNC_BUCKETS_S.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, b) in FSYNC_BUCKETS_S.iter().zip(&self.buckets) {
            cumulative += b.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_ns.load(Relaxed) as f64 / 1e9);
        let _ = writeln!(out, "{name}_count {count}");
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
