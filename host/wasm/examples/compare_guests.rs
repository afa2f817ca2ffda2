//! Two builds of the same guests, side by side: the per-message cost of
//! `passthrough`, `redact-json` and `anonymise` from folder A and from
//! folder B, in interleaved rounds, with the median of the per-round ratios
//! B/A. It exists to decide changes to how guests are built or what they
//! link (an allocator, a target feature, an SDK change), which a benchmark
//! run before and one after cannot: this machine drifts by more than such a
//! change is worth.
//!
//! ```sh
//! cp target/wasm-guests/wasm32-wasip2/release/*.wasm /tmp/a/   # before
//! # ...change, rebuild the guests...
//! cp target/wasm-guests/wasm32-wasip2/release/*.wasm /tmp/b/   # after
//! A=/tmp/a B=/tmp/b cargo run --release -p sluice-wasm --example compare_guests
//! ```
//!
//! `ONLY=redact_json` runs one guest; `BATCH=1` calls `handle-batch` with
//! all of a case's messages at once; `FRESH=1` gives every message a fresh
//! instance (from the pool, plus `init`); `FUEL=1` turns fuel on and
//! prints what a message uses on each side; `REPS=n` sets the rounds (9).

#[path = "../../anon/corpus/generate.rs"]
mod generate;

use sluice_wasm::{Limits, LoadedHandler, Message, Runtime, RuntimeConfig};
use std::time::Instant;

const ANONYMISE: &str = r#"{"rules": [{"path": "$.email", "op": "pseudonymize"}], "scan": {"default": {"op": "replace"}}}"#;
const REDACT: &str = r#"{"fields": ["/user/email", "/user/phone", "/card"]}"#;

/// Microseconds per message over `rounds` passes through `inputs`.
fn per_message(h: &mut LoadedHandler, inputs: &[Message], rounds: usize, batch: bool) -> f64 {
    let start = Instant::now();
    for _ in 0..rounds {
        if batch {
            std::hint::black_box(h.invoke_batch(inputs).expect("batch"));
            continue;
        }
        for m in inputs {
            std::hint::black_box(h.invoke(m).expect("call"));
        }
    }
    start.elapsed().as_secs_f64() * 1e6 / (rounds * inputs.len()) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dir = |var: &str| std::env::var(var).unwrap_or_else(|_| panic!("set {var} to a folder"));
    let (a, b) = (dir("A"), dir("B"));
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9);
    let only = std::env::var("ONLY").ok();
    let (batch, fresh) = (
        std::env::var_os("BATCH").is_some(),
        std::env::var_os("FRESH").is_some(),
    );
    let fuel = std::env::var_os("FUEL").is_some();
    let rt = Runtime::new(RuntimeConfig {
        fuel_enabled: fuel,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let limits = Limits {
        calls_per_instance_max: if fresh {
            1
        } else {
            Limits::default().calls_per_instance_max
        },
        ..Limits::default()
    };
    let load = |folder: &str, name: &str, config: &str| {
        let path = format!("{folder}/{name}.wasm");
        let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let secret = std::sync::Arc::<[u8]>::from(b"compare".as_slice());
        rt.load(name, "bench", &wasm, limits.clone(), config, secret)
            .unwrap_or_else(|e| panic!("load {path}: {e}"))
    };

    let payload = br#"{"id":"9f1c2e7a","user":{"email":"ann@example.com","phone":"+44 20 7946 0958","name":"Ann"},"card":"4111111111111111","amount":1299,"currency":"EUR","items":[{"sku":"A-1","qty":2}]}"#;
    let mut m = Message::new("payments.eu", payload.to_vec());
    m.key = Some(b"9f1c2e7a".to_vec());
    m.content_type = Some("application/json".into());
    let json = vec![m; 100];
    let mut corpus = generate::Gen::new(101);
    let texts: Vec<Message> = (0..500)
        .map(|_| Message::new("t", corpus.record(100).text.into_bytes()))
        .collect();
    let mut corpus = generate::Gen::new(1025);
    let records: Vec<Message> = (0..200)
        .map(|i| {
            let doc = serde_json::json!({"id": i, "email": "ann@example.com", "note": corpus.record(1024).text});
            let mut m = Message::new("t", doc.to_string().into_bytes());
            m.content_type = Some("application/json".into());
            m
        })
        .collect();

    println!("| guest | input | A µs/message | B µs/message | B/A median (min-max) |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for (name, config, inputs, what, rounds) in [
        ("passthrough", "", &json, "181 B JSON", 200),
        ("redact_json", REDACT, &json, "181 B JSON", 100),
        ("anonymise", ANONYMISE, &texts, "~100 B text", 10),
        ("anonymise", ANONYMISE, &records, "~1 KiB JSON", 5),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let rounds = if fresh { 1 } else { rounds };
        let mut ha = load(&a, name, config);
        let mut hb = load(&b, name, config);
        per_message(&mut ha, inputs, rounds / 5 + 1, batch);
        per_message(&mut hb, inputs, rounds / 5 + 1, batch);
        let (mut ta, mut tb, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            let x = per_message(&mut ha, inputs, rounds, batch);
            let y = per_message(&mut hb, inputs, rounds, batch);
            ta.push(x);
            tb.push(y);
            ratio.push(y / x);
        }
        if fuel {
            let per = |h: &LoadedHandler| h.stats().fuel_consumed / h.stats().messages.max(1);
            println!("{name}: fuel per message A {} B {}", per(&ha), per(&hb));
        }
        let lo = ratio.iter().cloned().fold(f64::MAX, f64::min);
        let hi = ratio.iter().cloned().fold(0.0, f64::max);
        println!(
            "| {name} | {what} | {:.3} | {:.3} | {:.3} ({lo:.3}-{hi:.3}) |",
            median(ta),
            median(tb),
            median(ratio)
        );
    }
}
