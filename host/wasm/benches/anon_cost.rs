//! The `anonymise` handler as a component vs the same `sluice-anon` policy
//! called natively, on the labelled corpus (~100-byte and ~1 KiB records,
//! as text and wrapped in JSON), with the host's real HMAC pseudonymizer
//! on both sides. Interleaved rounds, CPU time from /proc; prints records
//! per CPU-second and the Wasm/native ratio, and one JSON line per case
//! for bench/anonymise.sh. Run with
//! `cargo bench -p sluice-wasm --bench anon_cost -j1`.

#[path = "../../anon/corpus/generate.rs"]
mod generate;
#[path = "../../../guest-examples/guests.rs"]
mod guests;

use sluice_wasm::{Limits, Message, Runtime, RuntimeConfig};

const POLICY: &str = r#"{"rules": [{"path": "$.email", "op": "pseudonymize"}], "scan": {"default": {"op": "replace"}}}"#;
const SECRET: &[u8] = b"bench-secret";

fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// Runs `f` over all inputs for about `seconds` of CPU; records per CPU-second.
fn rate(seconds: f64, inputs: &[Message], mut f: impl FnMut(&Message)) -> f64 {
    let start = cpu_s();
    let mut n = 0u64;
    while cpu_s() - start < seconds {
        for m in inputs {
            f(m);
            n += 1;
        }
    }
    n as f64 / (cpu_s() - start)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let policy = sluice_anon::Policy::from_json(POLICY).expect("policy");
    let rt = Runtime::new(RuntimeConfig {
        fuel_enabled: false,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let mut handler = rt
        .load(
            "anonymise",
            "bench",
            &guests::guest("anonymise"),
            Limits::default(),
            POLICY,
            std::sync::Arc::<[u8]>::from(SECRET),
        )
        .expect("load anonymise");
    println!("| records | format | native records/CPU-s | Wasm records/CPU-s | Wasm/native time |");
    println!("| --- | --- | --- | --- | --- |");
    for size in [100usize, 1024] {
        for json in [false, true] {
            let mut corpus = generate::Gen::new(size as u64 + 1);
            let inputs: Vec<Message> = (0..500)
                .map(|i| {
                    let text = corpus.record(size).text;
                    let mut m = if json {
                        let doc =
                            serde_json::json!({"id": i, "email": "ann@example.com", "note": text});
                        let mut m = Message::new("t", doc.to_string().into_bytes());
                        m.content_type = Some("application/json".into());
                        m
                    } else {
                        Message::new("t", text.into_bytes())
                    };
                    m.timestamp_ms = 1_700_000_000_000;
                    m
                })
                .collect();
            let mut pseudo = |d: &str, v: &str| sluice_wasm::pseudonymize(SECRET, d, v);
            let (mut native, mut wasm, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..reps {
                let n = rate(seconds, &inputs, |m| {
                    std::hint::black_box(
                        policy
                            .apply(&m.payload, m.content_type.as_deref(), &mut pseudo)
                            .unwrap(),
                    );
                });
                let w = rate(seconds, &inputs, |m| {
                    std::hint::black_box(handler.invoke(m).unwrap());
                });
                native.push(n);
                wasm.push(w);
                ratios.push(n / w);
            }
            let (n, w, r) = (median(native), median(wasm), median(ratios.clone()));
            let lo = ratios.iter().cloned().fold(f64::MAX, f64::min);
            let hi = ratios.iter().cloned().fold(0.0, f64::max);
            let format = if json { "JSON" } else { "text" };
            println!("| ~{size} B | {format} | {n:.0} | {w:.0} | {r:.2}x ({lo:.2}-{hi:.2}) |");
            eprintln!(
                "{}",
                serde_json::json!({"bytes": size, "format": format, "native_per_cpu_s": n, "wasm_per_cpu_s": w, "ratio": r})
            );
        }
    }
}
