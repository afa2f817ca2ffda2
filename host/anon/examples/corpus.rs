//! Writes the labelled corpus as JSONL (`{"text", "entities": [{type,
//! start, end}]}`) for tools outside Rust, such as the Presidio benchmark:
//! `cargo run -p sluice-anon --example corpus -- 1000 100 > corpus-100.jsonl`
//! (records, bytes per record).

#[path = "../corpus/generate.rs"]
mod generate;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (records, bytes) = (
        args.first().copied().unwrap_or(1000),
        args.get(1).copied().unwrap_or(100),
    );
    let mut corpus = generate::Gen::new(20261202);
    for _ in 0..records {
        let r = corpus.record(bytes);
        let entities: Vec<serde_json::Value> = r
            .labels
            .iter()
            .map(|(k, s, e)| serde_json::json!({"type": k.as_str(), "start": s, "end": e}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"text": r.text, "entities": entities})
        );
    }
}
