//! Native throughput of the default policy on the corpus, in records per
//! CPU-second, for ~100-byte and ~1 KiB records, plus the one-off cost of
//! the first call:
//! `cargo run --release -p sluice-anon --example throughput`. `SIZE=100`
//! (or `1024`) runs one size only.

#[path = "../corpus/generate.rs"]
mod generate;

use std::time::Instant;

fn cpu_s() -> f64 {
    // utime + stime of this process, from /proc (Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn main() {
    let spec = std::env::var("POLICY").unwrap_or_else(|_| "{}".into());
    let policy = sluice_anon::Policy::from_json(&spec).unwrap();
    let mut pseudo = |_: &str, v: &str| format!("{:032x}", v.len());
    let t = Instant::now();
    policy
        .apply(b"call +44 20 7946 0958", None, &mut pseudo)
        .unwrap();
    println!("first call: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let sizes: Vec<usize> = match std::env::var("SIZE").ok().and_then(|s| s.parse().ok()) {
        Some(size) => vec![size],
        None => vec![100, 1024],
    };
    for size in sizes {
        let mut corpus = generate::Gen::new(size as u64);
        let records: Vec<String> = (0..2000).map(|_| corpus.record(size).text).collect();
        let bytes: usize = records.iter().map(String::len).sum();
        let (c0, w0) = (cpu_s(), Instant::now());
        let mut n = 0;
        let budget: f64 = std::env::var("CPU_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2.0);
        while cpu_s() - c0 < budget {
            for r in &records {
                policy
                    .apply(r.as_bytes(), Some("text/plain"), &mut pseudo)
                    .unwrap();
                n += 1;
            }
        }
        let cpu = cpu_s() - c0;
        println!(
            "~{size} B records (mean {} B): {:.0} records/CPU-s, {:.2} µs/record, wall {:.2} s",
            bytes / records.len(),
            n as f64 / cpu,
            cpu * 1e6 / n as f64,
            w0.elapsed().as_secs_f64()
        );
    }
}
