//! `sluice demo`: the first thing a newcomer runs. It starts a node on the
//! embedded default with a `demo` stream, deploys the ready-made `anonymise`
//! handler and a pipeline over the real HTTP API, publishes two sign-up
//! records with personal data, and shows what comes out of the pipeline:
//! the name and email replaced by keyed pseudonyms (the same email gives
//! the same pseudonym), the card masked, the position coarsened and the
//! phone number in the free-text note found and replaced. The node keeps
//! running so they can try `sluice pub`, `sluice read` and the API.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use sluice_broker::StreamSpec;
use sluice_core::{StreamName, TopicFilter};

use crate::client::{agent, body_json, topic_url};

/// The stream the demo publishes into, and the one its pipeline's outputs land in.
pub fn stream_specs() -> Vec<StreamSpec> {
    let mut input = StreamSpec::new(
        StreamName::new("demo").expect("literal"),
        vec![TopicFilter::new("demo/#").expect("literal")],
    );
    input.partitions = 2;
    let output = StreamSpec::new(
        StreamName::new("demo-clean").expect("literal"),
        vec![TopicFilter::new("clean/#").expect("literal")],
    );
    vec![input, output]
}

const RECORDS: [&str; 2] = [
    r#"{"name":"Ada Lovelace","email":"ada@example.com","phone":"+44 20 7946 0958","card":"4111 1111 1111 1111","position":{"lat":51.507222,"lon":-0.127647},"note":"call me on +44 20 7946 0958 after 5pm"}"#,
    r#"{"name":"A. Lovelace","email":"ada@example.com","phone":"+44 20 7946 0000","card":"5500 0000 0000 0004","position":{"lat":51.510137,"lon":-0.134012},"note":"order 4111111111111112 arrived"}"#,
];

/// What the demo pipeline does to a sign-up record.
fn policy() -> Value {
    json!({
        "rules": [
            {"path": "$.name", "op": "pseudonymize"},
            {"path": "$.email", "op": "pseudonymize", "format_preserving": true},
            {"path": "$.card", "op": "mask", "keep_last": 4},
            {"path": "$.position", "op": "generalize", "decimals": 2},
        ],
        "scan": {"default": {"op": "replace"}},
    })
}

pub fn walk_through(url: &str) -> anyhow::Result<()> {
    println!("\n== Sluice demo: node at {url}");
    deploy(url)?;
    let before = end_offset(url, "demo-clean")?;
    for record in RECORDS {
        println!("\n-> POST {url}/v1/topics/demo/signups\n   {record}");
        let v = body_json(
            agent()
                .post(topic_url(url, "demo/signups"))
                .header("content-type", "application/json")
                .header("sluice-key", "ada")
                .send(record)?,
        )?;
        let a = &v["appends"][0];
        println!(
            "<- durable in stream {} partition {} offset {}",
            a["stream"], a["partition"], a["offset"]
        );
    }
    let out = wait_for(url, "demo-clean", before, RECORDS.len())?;
    println!("\nWhat the pipeline published (stream demo-clean):");
    for m in &out {
        let payload = base64::engine::general_purpose::STANDARD
            .decode(m["payload"].as_str().unwrap_or(""))?;
        println!(
            "<- {} {}\n   audit: {}",
            m["topic"].as_str().unwrap_or("?"),
            String::from_utf8_lossy(&payload),
            m["headers"]["sluice-anon-audit"].as_str().unwrap_or("-")
        );
    }
    println!(
        "   The same email became the same pseudonym both times (keyed by a secret the handler never sees);\n   the card is masked, the position coarsened, phone numbers replaced even in free text,\n   and the order number, which only looks like a card, is left alone."
    );
    println!("\nTry it yourself (Ctrl-C stops the node):");
    println!("   sluice pub --url {url} demo/signups '{{\"email\":\"you@example.com\"}}'");
    println!("   sluice read --url {url} demo-clean --follow");
    println!("   curl {url}/v1/pipelines/demo-anonymise\n");
    Ok(())
}

/// Deploys the example handler and the pipeline, as any operator would.
fn deploy(url: &str) -> anyhow::Result<()> {
    println!("-- building the example handlers (once; later runs reuse the build)…");
    let wasm = crate::guests::try_guest("anonymise").map_err(anyhow::Error::msg)?;
    // Deployed versions are immutable: the build metadata names the content,
    // so a rebuilt handler is a new version rather than a conflict.
    let digest = sluice_broker::pipeline::handlers::sha256_hex(&wasm);
    let version = format!("0.1.0+{}", &digest[..8]);
    let v = body_json(
        agent()
            .put(format!("{url}/v1/handlers/anonymise/{version}"))
            .header("content-type", "application/wasm")
            .send(&wasm[..])?,
    )?;
    println!(
        "-> PUT {url}/v1/handlers/anonymise/{version}  ({} bytes of Wasm)\n<- sha256 {}",
        wasm.len(),
        v["sha256"].as_str().unwrap_or("?")
    );
    let pipeline = json!({
        "source": "demo",
        "steps": [{"handler": "anonymise", "version": version, "config": policy()}],
        "output": "clean/{topic}",
    });
    let v = body_json(
        agent()
            .put(format!("{url}/v1/pipelines/demo-anonymise"))
            .header("content-type", "application/json")
            .send(pipeline.to_string())?,
    )?;
    println!(
        "-> PUT {url}/v1/pipelines/demo-anonymise\n   {pipeline}\n<- {} (dead letters go to stream {})",
        v["state"].as_str().unwrap_or("?"),
        v["dead_letter"].as_str().unwrap_or("?")
    );
    Ok(())
}

fn end_offset(url: &str, stream: &str) -> anyhow::Result<u64> {
    let v = body_json(agent().get(format!("{url}/v1/streams/{stream}")).call()?)?;
    Ok(v["partitions"][0]["end_offset"].as_u64().unwrap_or(0))
}

/// Reads `count` messages of partition 0 of `stream` from `from`, waiting
/// up to ten seconds for the pipeline to produce them.
fn wait_for(url: &str, stream: &str, from: u64, count: usize) -> anyhow::Result<Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = body_json(
            agent()
                .get(format!(
                    "{url}/v1/streams/{stream}/partitions/0/messages?offset={from}&limit={count}"
                ))
                .call()?,
        )?;
        let msgs = v["messages"].as_array().cloned().unwrap_or_default();
        if msgs.len() >= count {
            return Ok(msgs);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the pipeline produced {} of {count} messages in 10 s; see `curl {url}/v1/pipelines/demo-anonymise`",
            msgs.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
