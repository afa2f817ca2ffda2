//! `sluice demo`: the first thing a newcomer runs. It starts a node on the
//! embedded default with a `demo` stream, publishes a record over the real
//! HTTP API, reads it back from the durable log, and leaves the node running
//! so they can try `sluice pub` and `sluice read` themselves.
//!
//! FIXME(issue 4/5): once Wasm pipelines and the `anonymise` handler land,
//! the demo deploys them so the record comes out anonymised.

use base64::Engine as _;
use sluice_broker::StreamSpec;
use sluice_core::{StreamName, TopicFilter};

use crate::client::{agent, body_json, topic_url};

pub fn stream_spec() -> StreamSpec {
    let mut spec = StreamSpec::new(
        StreamName::new("demo").expect("literal"),
        vec![TopicFilter::new("demo/#").expect("literal")],
    );
    spec.partitions = 2;
    spec
}

pub fn walk_through(url: &str) -> anyhow::Result<()> {
    let record = r#"{"name":"Ada Lovelace","email":"ada@example.com","phone":"+44 20 7946 0958","card":"4111 1111 1111 1111","position":{"lat":51.5072,"lon":-0.1276}}"#;
    println!("\n== Sluice demo: node at {url}");
    println!("-> POST {url}/v1/topics/demo/signups\n   {record}");
    let resp = agent()
        .post(topic_url(url, "demo/signups"))
        .header("content-type", "application/json")
        .header("sluice-key", "ada")
        .send(record)?;
    let v = body_json(resp)?;
    let a = &v["appends"][0];
    println!(
        "<- durable in stream {} partition {} offset {}",
        a["stream"], a["partition"], a["offset"]
    );
    let (p, o) = (
        a["partition"].as_u64().unwrap_or(0),
        a["offset"].as_u64().unwrap_or(0),
    );
    let read_url = format!("{url}/v1/streams/demo/partitions/{p}/messages?offset={o}&limit=1");
    let v = body_json(agent().get(&read_url).call()?)?;
    let m = &v["messages"][0];
    let payload =
        base64::engine::general_purpose::STANDARD.decode(m["payload"].as_str().unwrap_or(""))?;
    println!("-> GET {read_url}\n<- {}", serde_json::to_string_pretty(m)?);
    println!("   payload, decoded: {}", String::from_utf8_lossy(&payload));
    println!("\nTry it yourself (Ctrl-C stops the node):");
    println!("   sluice pub --url {url} demo/hello 'hi there'");
    println!("   sluice read --url {url} demo --follow\n");
    Ok(())
}
