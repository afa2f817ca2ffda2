//! Per-message cost of Wasm handlers side by side with the very same logic
//! compiled natively (shared through `#[path]`), in one run, so the Wasm
//! overhead is a ratio and not a guess. Two parts:
//!
//! 1. `redact-json` (Rust) on a ~200-byte JSON message: native, reused
//!    instance with fuel on and off, `handle-batch` of 100, a fresh instance
//!    per message, and the `passthrough` guest, whose cost is the host's
//!    own overhead per message (lowering, entering, lifting).
//! 2. `filter` in each guest language (Rust, C, JavaScript, Python) on the
//!    same message: native Rust, then per language single and batched
//!    calls with fuel on and off, and a fresh instance per message.
//!
//! Within a table, the cases run in interleaved rounds and each ratio is
//! the median of the per-round ratios, so a burst of load on this shared
//! machine moves both sides of a ratio alike.
//!
//! It backs the decisions in docs/handlers.md (reuse instances, offer
//! `handle-batch`, keep fuel optional). Run with
//! `cargo bench -p sluice-wasm --bench handler_cost -j1`
//! (`BENCH_MESSAGES=n` changes the number of messages per case; the
//! JavaScript and Python cases use a tenth). The non-Rust guests are built
//! by guest-examples/build-polyglot.sh, which installs their toolchains.

#[path = "../../../guest-examples/guests.rs"]
mod guests;
#[path = "../../../guest-examples/rust/filter/src/predicate.rs"]
mod predicate;
#[path = "../../../guest-examples/rust/redact-json/src/redact.rs"]
mod redact;

use sluice_wasm::{Limits, LoadedHandler, Message, Output, Runtime, RuntimeConfig};
use std::hint::black_box;
use std::time::{Duration, Instant};

const REDACT_CONFIG: &str = r#"{"fields": ["/user/email", "/user/phone", "/card"]}"#;
const FILTER_CONFIG: &str = r#"{"field": "/amount", "op": "gt", "value": 1000}"#;
const BATCH: usize = 100;

/// A ~200-byte JSON message, the size the issue's measurements used.
fn message() -> Message {
    let payload = br#"{"id":"9f1c2e7a","user":{"email":"ann@example.com","phone":"+44 20 7946 0958","name":"Ann"},"card":"4111111111111111","amount":1299,"currency":"EUR","items":[{"sku":"A-1","qty":2}]}"#;
    let mut m = Message::new("payments.eu", payload.to_vec());
    m.key = Some(b"9f1c2e7a".to_vec());
    m.content_type = Some("application/json".into());
    m.timestamp_ms = 1_700_000_000_000;
    m
}

/// What `redact-json` does, natively: parse, blank, serialise, build the
/// output (the same work the component does, minus the boundary).
fn redact_native(fields: &[redact::Field], m: &Message) -> Vec<Output> {
    let mut doc: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    let mut out = m.clone();
    if redact::redact(&mut doc, fields, None) > 0 {
        out.payload = serde_json::to_vec(&doc).unwrap();
        out.content_type = Some("application/json".into());
    }
    vec![Output {
        topic: None,
        message: out,
    }]
}

/// What `filter` does, natively: parse, test, hand the message back.
fn filter_native(f: &predicate::Filter, m: &Message) -> Vec<Output> {
    let doc: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    if f.keeps(&doc) {
        vec![Output {
            topic: None,
            message: m.clone(),
        }]
    } else {
        Vec::new()
    }
}

/// Rounds per case; each case's figure is its median round.
const ROUNDS: usize = 7;

/// One way of handling the message, timed in rounds interleaved with the
/// others of its table (the machine is shared and noisy: a ratio taken
/// within one round holds where absolute figures drift).
struct Case<'a> {
    name: String,
    /// Calls per round, and messages per call (a batch's size).
    calls: usize,
    messages: usize,
    call: Box<dyn FnMut() + 'a>,
}

impl<'a> Case<'a> {
    fn new(
        name: impl Into<String>,
        calls: usize,
        messages: usize,
        call: impl FnMut() + 'a,
    ) -> Self {
        Case {
            name: name.into(),
            calls: calls.max(1),
            messages,
            call: Box::new(call),
        }
    }
}

/// Per-message time of every case in every round: after a warm-up (caches,
/// allocator, instance), round r runs each case in turn.
fn run_interleaved(cases: &mut [Case]) -> Vec<Vec<Duration>> {
    for c in cases.iter_mut() {
        for _ in 0..c.calls / 10 + 1 {
            (c.call)();
        }
    }
    let mut times = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for _ in 0..ROUNDS {
        for (c, t) in cases.iter_mut().zip(times.iter_mut()) {
            let start = Instant::now();
            for _ in 0..c.calls {
                (c.call)();
            }
            t.push(start.elapsed() / (c.calls * c.messages) as u32);
        }
    }
    times
}

fn median<T: Copy + PartialOrd>(v: &[T]) -> T {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

/// `case / base` within each round: median, min and max.
fn ratios(case: &[Duration], base: &[Duration]) -> (f64, f64, f64) {
    let r: Vec<f64> = case
        .iter()
        .zip(base)
        .map(|(c, b)| c.as_secs_f64() / b.as_secs_f64())
        .collect();
    let lo = r.iter().cloned().fold(f64::MAX, f64::min);
    let hi = r.iter().cloned().fold(0.0, f64::max);
    (median(&r), lo, hi)
}

/// The two runtimes every case runs on: the node's default (fuel on) and
/// fuel off; both have the epoch deadline. The compile cache is the one
/// the tests use, so the 12-18 MB JavaScript and Python components are
/// compiled once per machine, not once per run.
struct Runtimes {
    fuel: Runtime,
    no_fuel: Runtime,
}

impl Runtimes {
    fn new() -> Runtimes {
        let cache = guests::compile_cache_dir();
        let rt = |fuel_enabled| {
            Runtime::new(RuntimeConfig {
                fuel_enabled,
                instances_max: 16,
                cache_dir: Some(cache.clone()),
                ..RuntimeConfig::default()
            })
            .expect("runtime")
        };
        Runtimes {
            fuel: rt(true),
            no_fuel: rt(false),
        }
    }
}

fn load(rt: &Runtime, name: &str, wasm: &[u8], config: &str, limits: Limits) -> LoadedHandler {
    rt.load(
        name,
        "bench",
        wasm,
        limits,
        config,
        std::sync::Arc::<[u8]>::from(b"bench-secret".as_slice()),
    )
    .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

/// Fuel a warm call of the handler uses (a first call can cost more: a
/// JavaScript engine's first run of the code, for one).
fn fuel_per_message(rts: &Runtimes, name: &str, wasm: &[u8], config: &str, m: &Message) -> u64 {
    let mut h = load(&rts.fuel, name, wasm, config, Limits::default());
    h.invoke(m).expect("the handler handles the message");
    let first = h.stats().fuel_consumed;
    for _ in 0..10 {
        h.invoke(m).expect("the handler handles the message");
    }
    (h.stats().fuel_consumed - first) / 10
}

/// Every way the host can call one handler, as cases: single calls with
/// fuel on and off, `handle-batch` with fuel on and off, and a fresh
/// instance (from the pool, plus `init`) per message.
fn wasm_cases<'a>(
    rts: &Runtimes,
    label: &str,
    wasm: &[u8],
    config: &str,
    m: &'a Message,
    batch: &'a [Message],
    n: usize,
) -> Vec<Case<'a>> {
    let mut single_fuel = load(&rts.fuel, label, wasm, config, Limits::default());
    let mut single = load(&rts.no_fuel, label, wasm, config, Limits::default());
    let mut batch_fuel = load(&rts.fuel, label, wasm, config, Limits::default());
    let mut batch_no_fuel = load(&rts.no_fuel, label, wasm, config, Limits::default());
    // Per-message instances: recycle after every call, so each message
    // pays for instantiation from the pool and `init(config)`.
    let fresh_limits = Limits {
        calls_per_instance_max: 1,
        ..Limits::default()
    };
    let mut fresh = load(&rts.no_fuel, label, wasm, config, fresh_limits);
    vec![
        Case::new(format!("{label}, single, fuel on"), n, 1, move || {
            black_box(single_fuel.invoke(black_box(m)).unwrap());
        }),
        Case::new(format!("{label}, single, fuel off"), n, 1, move || {
            black_box(single.invoke(black_box(m)).unwrap());
        }),
        Case::new(
            format!("{label}, batch of {BATCH}, fuel on"),
            n / BATCH,
            BATCH,
            move || {
                black_box(batch_fuel.invoke_batch(black_box(batch)).unwrap());
            },
        ),
        Case::new(
            format!("{label}, batch of {BATCH}, fuel off"),
            n / BATCH,
            BATCH,
            move || {
                black_box(batch_no_fuel.invoke_batch(black_box(batch)).unwrap());
            },
        ),
        Case::new(
            format!("{label}, fresh instance, fuel off"),
            (n / 20).max(20),
            1,
            move || {
                black_box(fresh.invoke(black_box(m)).unwrap());
            },
        ),
    ]
}

fn us(t: Duration) -> String {
    format!("{:.2} µs", t.as_secs_f64() * 1e6)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes
    // nothing useful either: both just run the whole thing.
    let n: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let m = message();
    let rts = Runtimes::new();
    redact_json(&rts, &m, n);
    filter_per_language(&rts, &m, n);
}

fn redact_json(rts: &Runtimes, m: &Message, n: usize) {
    let wasm = guests::guest("redact-json");
    let pass = guests::guest("passthrough");
    let fields: Vec<redact::Field> = serde_json::from_str::<serde_json::Value>(REDACT_CONFIG)
        .unwrap()["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| redact::Field::parse(f.as_str().unwrap()).unwrap())
        .collect();
    let mut check = load(
        &rts.fuel,
        "redact-json",
        &wasm,
        REDACT_CONFIG,
        Limits::default(),
    );
    assert_eq!(
        check.invoke(m).unwrap(),
        redact_native(&fields, m),
        "component and native code disagree"
    );
    let fuel = fuel_per_message(rts, "redact-json", &wasm, REDACT_CONFIG, m);
    let batch: Vec<Message> = vec![m.clone(); BATCH];
    let mut cases = vec![Case::new("native Rust (same redact.rs)", n, 1, || {
        black_box(redact_native(&fields, black_box(m)));
    })];
    cases.extend(wasm_cases(
        rts,
        "redact-json",
        &wasm,
        REDACT_CONFIG,
        m,
        &batch,
        n,
    ));
    // The host's own overhead: passthrough hands the message back as is;
    // its reused-instance calls without fuel are the figures that matter.
    cases.extend(
        wasm_cases(rts, "passthrough", &pass, "", m, &batch, n)
            .into_iter()
            .filter(|c| c.name.ends_with(", fuel off") && !c.name.contains("fresh")),
    );
    let times = run_interleaved(&mut cases);

    println!(
        "## redact-json, {}-byte JSON message, {n} messages per case, {ROUNDS} interleaved rounds\n",
        m.payload.len()
    );
    println!("| case | per message (median) | × native (median of rounds, min-max) |");
    println!("| --- | ---: | ---: |");
    for (c, t) in cases.iter().zip(&times) {
        let (r, lo, hi) = ratios(t, &times[0]);
        println!(
            "| {} | {} | {r:.2}× ({lo:.2}-{hi:.2}) |",
            c.name,
            us(median(t))
        );
    }
    println!("\nfuel per message: {fuel}\n");
}

fn filter_per_language(rts: &Runtimes, m: &Message, n: usize) {
    let f: predicate::Filter = serde_json::from_str(FILTER_CONFIG).unwrap();
    assert_eq!(filter_native(&f, m).len(), 1, "the message must be kept");
    let batch: Vec<Message> = vec![m.clone(); BATCH];
    println!(
        "## filter, per guest language, {}-byte JSON message (kept), {ROUNDS} interleaved rounds\n",
        m.payload.len()
    );
    println!(
        "| language | native Rust (same predicate.rs) | single, fuel on | single, fuel off | batch of {BATCH}, fuel on | batch of {BATCH}, fuel off | fresh instance per message | × native (single, fuel off; min-max) | fuel per message |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for lang in ["rust", "c", "js", "python"] {
        let wasm = guests::polyglot(lang);
        let label = format!("{lang}-filter");
        let per_case = if lang == "rust" || lang == "c" {
            n
        } else {
            n / 10
        };
        let fuel = fuel_per_message(rts, &label, &wasm, FILTER_CONFIG, m);
        let mut cases = vec![Case::new("native", per_case, 1, || {
            black_box(filter_native(&f, black_box(m)));
        })];
        cases.extend(wasm_cases(
            rts,
            &label,
            &wasm,
            FILTER_CONFIG,
            m,
            &batch,
            per_case,
        ));
        let times = run_interleaved(&mut cases);
        let (r, lo, hi) = ratios(&times[2], &times[0]);
        let t: Vec<String> = times.iter().map(|t| us(median(t))).collect();
        println!(
            "| {lang} | {} | {} | {} | {} | {} | {} | {r:.2}× ({lo:.2}-{hi:.2}) | {fuel} |",
            t[0], t[1], t[2], t[3], t[4], t[5]
        );
    }
}
