//! `sluice-loadgen`: the load generator behind Sluice's benchmarks. Every run
//! is bounded by a message count and a time limit and stops by itself; it
//! reports throughput, latency percentiles and, because a fast run that lost
//! a message is a failed run, whether every acknowledged message came back.
//!
//! Modes:
//! - `http-publish`: N connections publish to a node's HTTP API (closed loop,
//!   one request in flight per connection), then read the stream back and
//!   check that every acknowledged payload is stored, in order per connection.
//! - `mqtt`: publishers and subscribers against any MQTT broker, with loss,
//!   reordering and latency counted per subscriber (see `mqtt.rs`).
//! - `mqtt-idle`: holds many idle connections, to measure memory per connection.
//! - `fsync-baseline`: the peer for durable appends — a raw `write` +
//!   `fdatasync` loop on one file, the cost of acknowledging without group commit.

mod mqtt;

use std::collections::HashMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::{Parser, Subcommand};
use serde_json::Value;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    HttpPublish {
        #[arg(long)]
        url: String,
        /// Stream the topic is captured by (read back to check for loss).
        #[arg(long, default_value = "bench")]
        stream: String,
        #[arg(long, default_value = "bench/load")]
        topic: String,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// Messages in all.
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        #[arg(long, default_value_t = 64)]
        payload_bytes: usize,
        /// Send JSON objects (`{"c":…,"s":…,"pad":"xx…"}`) instead of text.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 60)]
        time_limit_s: u64,
    },
    Mqtt {
        #[arg(long)]
        addr: std::net::SocketAddr,
        #[arg(long, default_value_t = 0)]
        qos: u8,
        #[arg(long, default_value_t = 64)]
        payload_bytes: usize,
        #[arg(long, default_value_t = 1)]
        publishers: usize,
        #[arg(long, default_value_t = 1)]
        subscribers: usize,
        /// Messages per publisher.
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        /// QoS 1 publishes in flight per publisher (closed loop).
        #[arg(long, default_value_t = 64)]
        inflight: usize,
        /// Open loop: each publisher sends this many messages per second on
        /// a fixed schedule, whatever the broker does, and latency counts
        /// from when each message was due (no coordinated omission).
        #[arg(long)]
        rate_per_s: Option<u64>,
        #[arg(long, default_value_t = 60)]
        time_limit_s: u64,
    },
    MqttIdle {
        #[arg(long)]
        addr: std::net::SocketAddr,
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        hold_s: u64,
    },
    FsyncBaseline {
        #[arg(long, default_value_t = 2_000)]
        count: usize,
        #[arg(long, default_value_t = 4096)]
        write_bytes: usize,
        #[arg(long, default_value_t = 30)]
        time_limit_s: u64,
        /// Directory for the scratch file (same file system as the node's data).
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().mode {
        Mode::HttpPublish {
            url,
            stream,
            topic,
            connections,
            count,
            payload_bytes,
            json,
            time_limit_s,
        } => http_publish(
            &url,
            &stream,
            &topic,
            connections,
            count,
            Payload {
                bytes: payload_bytes,
                json,
            },
            Duration::from_secs(time_limit_s),
        ),
        Mode::Mqtt {
            addr,
            qos,
            payload_bytes,
            publishers,
            subscribers,
            count,
            inflight,
            rate_per_s,
            time_limit_s,
        } => {
            let load = mqtt::Load {
                addr,
                qos: sluice_mqtt::QoS::from_u8(qos.min(1)).expect("0 or 1"),
                payload_bytes,
                publishers,
                subscribers,
                count,
                inflight: inflight.max(1),
                rate_per_s: rate_per_s.map(|r| r.max(1)),
                time_limit: Duration::from_secs(time_limit_s),
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let out = rt.block_on(mqtt::run(load))?;
            println!("{out}");
            anyhow::ensure!(
                out["lost"] == 0 && out["reordered"] == 0,
                "the broker lost or reordered messages"
            );
            Ok(())
        }
        Mode::MqttIdle {
            addr,
            connections,
            hold_s,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let out = rt.block_on(mqtt::idle(addr, connections, Duration::from_secs(hold_s)))?;
            println!("{out}");
            Ok(())
        }
        Mode::FsyncBaseline {
            count,
            write_bytes,
            time_limit_s,
            dir,
        } => fsync_baseline(count, write_bytes, Duration::from_secs(time_limit_s), &dir),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// What each HTTP publish carries: `bytes` of text, or a JSON object of
/// about that size.
#[derive(Clone, Copy)]
struct Payload {
    bytes: usize,
    json: bool,
}

fn http_publish(
    url: &str,
    stream: &str,
    topic: &str,
    connections: usize,
    count: usize,
    payload: Payload,
    limit: Duration,
) -> anyhow::Result<()> {
    let Payload {
        bytes: payload_bytes,
        json,
    } = payload;
    let per_conn = count.div_ceil(connections);
    let started = Instant::now();
    let deadline = started + limit;
    let workers: Vec<_> = (0..connections)
        .map(|c| {
            let (url, topic) = (url.to_owned(), topic.to_owned());
            std::thread::spawn(move || {
                let agent = agent();
                let mut latencies = Vec::with_capacity(per_conn);
                let mut acked = Vec::with_capacity(per_conn);
                let mut refused = 0u64;
                for seq in 0..per_conn {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let mut body = if json {
                        format!("{{\"c\":{c},\"s\":{seq},\"pad\":\"").into_bytes()
                    } else {
                        format!("c{c}-s{seq}-").into_bytes()
                    };
                    body.resize(
                        payload_bytes.max(body.len() + 2) - if json { 2 } else { 0 },
                        b'x',
                    );
                    if json {
                        body.extend_from_slice(b"\"}");
                    }
                    let t = Instant::now();
                    let r = agent
                        .post(format!("{url}/v1/topics/{topic}"))
                        .header("sluice-key", format!("c{c}"))
                        .send(&body[..]);
                    let Ok(mut resp) = r else { break };
                    let status = resp.status().as_u16();
                    let text = resp.body_mut().read_to_string().unwrap_or_default();
                    if status == 429 {
                        refused += 1;
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    latencies.push(t.elapsed());
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let a = &v["appends"][0];
                    if let (Some(p), Some(o)) = (a["partition"].as_u64(), a["offset"].as_u64()) {
                        acked.push((p, o, body));
                    }
                }
                (latencies, acked, refused)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut acked = Vec::new();
    let mut refused = 0;
    for w in workers {
        let (l, a, r) = w.join().expect("worker");
        latencies.extend(l);
        acked.extend(a);
        refused += r;
    }
    let elapsed = started.elapsed();
    let loadgen_cpu_s = own_cpu_seconds();
    latencies.sort();
    // Read back and check every acknowledged message.
    let agent = agent();
    let mut stored: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let partitions: Vec<u64> = acked
        .iter()
        .map(|(p, _, _)| *p)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for p in partitions {
        let mut offset = 0;
        loop {
            let mut resp = agent
                .get(format!(
                    "{url}/v1/streams/{stream}/partitions/{p}/messages?offset={offset}&limit=1000"
                ))
                .call()?;
            let v: Value = serde_json::from_str(&resp.body_mut().read_to_string()?)?;
            let msgs = v["messages"].as_array().cloned().unwrap_or_default();
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                let o = m["offset"].as_u64().unwrap_or(0);
                let b64 = m["payload"].as_str().unwrap_or("");
                stored.insert(
                    (p, o),
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap_or_default(),
                );
            }
            offset = v["next_offset"].as_u64().unwrap_or(offset + 1);
        }
    }
    let lost = acked
        .iter()
        .filter(|(p, o, b)| stored.get(&(*p, *o)) != Some(b))
        .count();
    let out = serde_json::json!({
        "mode": "http-publish",
        "connections": connections,
        "payload_bytes": payload_bytes,
        "acked": acked.len(),
        "refused_429": refused,
        "lost": lost,
        "seconds": elapsed.as_secs_f64(),
        "loadgen_cpu_s": loadgen_cpu_s,
        "msgs_per_s": acked.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": percentile(&latencies, 0.50),
        "p99_ms": percentile(&latencies, 0.99),
        "max_ms": percentile(&latencies, 1.0),
    });
    println!("{out}");
    std::io::stdout().flush()?;
    anyhow::ensure!(lost == 0, "{lost} acknowledged messages were lost");
    Ok(())
}

fn fsync_baseline(
    count: usize,
    write_bytes: usize,
    limit: Duration,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    let mut file = tmp.as_file().try_clone()?;
    let block = vec![0x5au8; write_bytes];
    let mut latencies = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        if started.elapsed() >= limit {
            break;
        }
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "{}",
        serde_json::json!({
            "mode": "fsync-baseline",
            "write_bytes": write_bytes,
            "acked": latencies.len(),
            "seconds": elapsed.as_secs_f64(),
            "msgs_per_s": latencies.len() as f64 / elapsed.as_secs_f64(),
            "p50_ms": percentile(&latencies, 0.50),
            "p99_ms": percentile(&latencies, 0.99),
        })
    );
    Ok(())
}

/// This process's user + system CPU seconds so far (Linux), so a run can be
/// flagged when the load generator, not the broker, was the limit.
pub(crate) fn own_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}
