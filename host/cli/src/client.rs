//! `sluice pub` and `sluice read`: a person at a terminal talking to a running
//! node over its HTTP API, exactly as any other client would.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::Value;

/// Characters escaped in a topic placed in a URL path ('/' stays: it separates levels).
const TOPIC_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'+');

#[derive(clap::Args)]
pub struct PubArgs {
    /// Topic to publish to, e.g. sensors/a/temp.
    topic: String,
    /// The payload (or use --file, or pipe it on stdin with --file -).
    payload: Option<String>,
    /// Read the payload from a file ("-" for stdin).
    #[arg(long, conflicts_with = "payload")]
    file: Option<PathBuf>,
    /// Message key: messages with the same key keep their order.
    #[arg(long)]
    key: Option<String>,
    /// Idempotency id: a second publish with it within the window is not stored again.
    #[arg(long)]
    msg_id: Option<String>,
    /// Content type of the payload.
    #[arg(long)]
    content_type: Option<String>,
    /// A message header, NAME=VALUE (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// The node's HTTP address.
    #[arg(long, env = "SLUICE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// NAME:PASSWORD of a user, for a node with a users file.
    #[arg(long, env = "SLUICE_USER", hide_env_values = true)]
    user: Option<String>,
}

#[derive(clap::Args)]
pub struct ReadArgs {
    /// Stream to read.
    stream: String,
    /// Start at this offset, or at this RFC 3339 time (2026-11-23T10:00:00Z).
    #[arg(long, default_value = "0")]
    from: String,
    /// Only this partition (default: all).
    #[arg(long)]
    partition: Option<u32>,
    /// Keep waiting for new messages.
    #[arg(long)]
    follow: bool,
    /// Print each message as one JSON line, payload in base64.
    #[arg(long)]
    json: bool,
    /// The node's HTTP address.
    #[arg(long, env = "SLUICE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// NAME:PASSWORD of a user, for a node with a users file.
    #[arg(long, env = "SLUICE_USER", hide_env_values = true)]
    user: Option<String>,
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Reads a response body as JSON, turning an API error into a readable one.
pub fn body_json(mut resp: ureq::http::Response<ureq::Body>) -> anyhow::Result<Value> {
    let status = resp.status();
    let text = resp.body_mut().read_to_string()?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let msg = v["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        bail!("{status}: {msg}");
    }
    Ok(v)
}

/// Adds HTTP Basic credentials (`NAME:PASSWORD`) to a request, if given.
fn with_user<B>(req: ureq::RequestBuilder<B>, user: Option<&str>) -> ureq::RequestBuilder<B> {
    match user {
        Some(u) => req.header(
            "authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(u)
            ),
        ),
        None => req,
    }
}

pub fn topic_url(base: &str, topic: &str) -> String {
    format!(
        "{}/v1/topics/{}",
        base.trim_end_matches('/'),
        utf8_percent_encode(topic, TOPIC_ESCAPES)
    )
}

pub fn publish(args: PubArgs) -> anyhow::Result<()> {
    let payload = match (&args.payload, &args.file) {
        (Some(p), None) => p.clone().into_bytes(),
        (None, Some(f)) if f.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            buf
        }
        (None, Some(f)) => std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        _ => bail!("give a payload or --file"),
    };
    let mut req = with_user(
        agent().post(topic_url(&args.url, &args.topic)),
        args.user.as_deref(),
    );
    if let Some(k) = &args.key {
        req = req.header("sluice-key", k);
    }
    if let Some(id) = &args.msg_id {
        req = req.header("sluice-msg-id", id);
    }
    if let Some(ct) = &args.content_type {
        req = req.header("content-type", ct);
    }
    for h in &args.headers {
        let (name, value) = h
            .split_once('=')
            .with_context(|| format!("header {h:?} is not NAME=VALUE"))?;
        req = req.header(format!("sluice-header-{name}"), value);
    }
    let v = body_json(req.send(&payload[..]).context("publishing")?)?;
    let appends = v["appends"].as_array().cloned().unwrap_or_default();
    if appends.is_empty() {
        println!("published; no stream captures {:?}", args.topic);
    }
    for a in appends {
        let dup = if a["duplicate"].as_bool() == Some(true) {
            " (duplicate, not stored again)"
        } else {
            ""
        };
        println!(
            "{} partition {} offset {}{dup}",
            a["stream"].as_str().unwrap_or("?"),
            a["partition"],
            a["offset"]
        );
    }
    Ok(())
}

pub fn read(args: ReadArgs) -> anyhow::Result<()> {
    let base = args.url.trim_end_matches('/').to_owned();
    let agent = agent();
    let user = args.user.as_deref();
    let info = body_json(
        with_user(
            agent.get(format!("{base}/v1/streams/{}", args.stream)),
            user,
        )
        .call()
        .context("reading the stream")?,
    )?;
    let count = info["partitions"].as_array().map_or(0, Vec::len) as u32;
    let partitions: Vec<u32> = match args.partition {
        Some(p) => vec![p],
        None => (0..count).collect(),
    };
    let from_param = if args.from.bytes().all(|b| b.is_ascii_digit()) {
        format!("offset={}", args.from)
    } else {
        format!(
            "from_time={}",
            utf8_percent_encode(&args.from, TOPIC_ESCAPES)
        )
    };
    let mut next: Vec<Option<u64>> = vec![None; partitions.len()];
    loop {
        let mut got = 0;
        for (i, p) in partitions.iter().enumerate() {
            let q = match next[i] {
                Some(o) => format!("offset={o}"),
                None => from_param.clone(),
            };
            let url = format!(
                "{base}/v1/streams/{}/partitions/{p}/messages?{q}&limit=500",
                args.stream
            );
            let v = body_json(with_user(agent.get(url), user).call()?)?;
            for m in v["messages"].as_array().into_iter().flatten() {
                got += 1;
                print_message(*p, m, args.json);
            }
            next[i] = v["next_offset"].as_u64();
        }
        if got == 0 {
            if !args.follow {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn print_message(partition: u32, m: &Value, json: bool) {
    if json {
        let mut m = m.clone();
        m["partition"] = partition.into();
        println!("{m}");
        return;
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(m["payload"].as_str().unwrap_or(""))
        .unwrap_or_default();
    let text = String::from_utf8(payload)
        .unwrap_or_else(|e| format!("<{} bytes of binary>", e.as_bytes().len()));
    println!(
        "{}:{} {} {} {}",
        partition,
        m["offset"],
        m["timestamp"].as_str().unwrap_or(""),
        m["topic"].as_str().unwrap_or(""),
        text
    );
}
