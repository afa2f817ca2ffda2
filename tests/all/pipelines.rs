//! Wasm pipelines end to end: real example and hostile components deployed
//! into the real binary over its HTTP API (and its config file), messages
//! published over HTTP and MQTT, outputs and dead letters read back from the
//! durable streams, the node killed with `kill -9` while a pipeline runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng as _;
use serde_json::{Value, json};
use sluice_mqtt::{QoS, Version};

use crate::mqtt_client::Client;
use crate::support::{TestNode, into_json, payload};

/// Deploys a guest example under `version` and insists on success.
pub(crate) fn deploy(node: &TestNode, guest: &str, version: &str) {
    let wasm = crate::guests::guest(guest);
    let (status, v) = put_wasm(node, guest, version, &wasm);
    assert!(
        status == 201 || status == 200,
        "deploy {guest}: {status} {v}"
    );
    assert_eq!(v["bytes"], wasm.len());
}

fn put_wasm(node: &TestNode, name: &str, version: &str, wasm: &[u8]) -> (u16, Value) {
    into_json(
        node.authorized(
            node.agent
                .put(format!("{}/v1/handlers/{name}/{version}", node.url)),
        )
        .header("content-type", "application/wasm")
        .send(wasm),
    )
}

pub(crate) fn create_pipeline(node: &TestNode, name: &str, doc: Value) -> Value {
    let (status, v) = node.put_json(&format!("/v1/pipelines/{name}"), &doc);
    assert_eq!(status, 201, "create pipeline {name}: {v}");
    assert_eq!(v["state"], "running", "{v}");
    v
}

fn status(node: &TestNode, name: &str) -> Value {
    let (code, v) = node.get(&format!("/v1/pipelines/{name}"));
    assert_eq!(code, 200, "{v}");
    v
}

/// Polls the pipeline's status until `done` holds, or fails after `secs`.
pub(crate) fn wait_status(
    node: &TestNode,
    name: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = status(node, name);
        if done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "pipeline {name} did not get there in {secs} s: {v}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Every message of every partition of `stream`.
pub(crate) fn read_stream(node: &TestNode, stream: &str) -> Vec<Value> {
    let (code, v) = node.get(&format!("/v1/streams/{stream}"));
    assert_eq!(code, 200, "{v}");
    let partitions = v["partitions"].as_array().unwrap().len() as u32;
    (0..partitions)
        .flat_map(|p| node.read_all(stream, p, 0))
        .collect()
}

pub(crate) fn json_payload(m: &Value) -> Value {
    serde_json::from_slice(&payload(m)).unwrap_or_else(|e| panic!("{e}: {m}"))
}

pub(crate) fn is_pseudonym(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn a_chain_filters_redacts_and_routes_messages_from_http_and_mqtt() {
    let node = TestNode::start();
    node.create_stream("orders", json!({"subjects": ["orders/#"], "partitions": 2}));
    node.create_stream("routed", json!({"subjects": ["region/#", "unrouted/#"]}));
    for g in ["filter", "redact-json", "router"] {
        deploy(&node, g, "1.0.0");
    }
    let created = create_pipeline(
        &node,
        "shop",
        json!({
            "source": "orders",
            "steps": [
                {"handler": "filter", "config": {"field": "/status", "op": "eq", "value": "paid"}},
                {"handler": "redact-json", "config": {"fields": ["/email"], "pseudonymize": true}},
                {"handler": "router", "config": {"field": "/region", "template": "region/{value}/orders"}},
            ],
            "output": "unrouted/{topic}",
        }),
    );
    assert_eq!(created["dead_letter"], "shop-dlq");
    let mut watcher = Client::simple(node.mqtt, Version::V5, "watcher");
    watcher.subscribe("region/eu/#", QoS::AtLeastOnce);

    let orders = [
        json!({"id": 1, "status": "paid", "region": "eu", "email": "ann@example.com"}),
        json!({"id": 2, "status": "paid", "region": "us", "email": "bob@example.com"}),
        json!({"id": 3, "status": "open", "region": "eu", "email": "cy@example.com"}),
        json!({"id": 4, "status": "paid", "email": "ann@example.com"}),
    ];
    for (i, o) in orders.iter().enumerate() {
        node.publish(
            &format!("orders/web/{i}"),
            o.to_string().as_bytes(),
            &[("content-type", "application/json"), ("sluice-key", "k")],
        );
    }
    // One more over MQTT, from a real MQTT client.
    let mut producer = Client::simple(node.mqtt, Version::V5, "producer");
    let by_mqtt = json!({"id": 5, "status": "paid", "region": "eu", "email": "dee@example.com"});
    producer.publish(
        "orders/mqtt",
        by_mqtt.to_string().as_bytes(),
        QoS::AtLeastOnce,
    );

    let st = wait_status(&node, "shop", 30, |v| {
        v["messages_in"] == 5 && v["lag"] == 0
    });
    assert_eq!(st["filtered"], 1, "{st}");
    assert_eq!(st["messages_out"], 4, "{st}");
    assert_eq!(st["dead_lettered"], 0, "{st}");
    let inv: Vec<u64> = st["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["invocations"].as_u64().unwrap())
        .collect();
    assert_eq!(
        inv,
        vec![5, 4, 4],
        "the filter saw all five, the others four: {st}"
    );

    let out = read_stream(&node, "routed");
    let by_id: HashMap<u64, (String, Value)> = out
        .iter()
        .map(|m| {
            let p = json_payload(m);
            (
                p["id"].as_u64().unwrap(),
                (m["topic"].as_str().unwrap().to_owned(), p),
            )
        })
        .collect();
    assert_eq!(by_id.len(), 4, "{out:?}");
    assert!(!by_id.contains_key(&3), "the open order was filtered out");
    assert_eq!(by_id[&1].0, "region/eu/orders");
    assert_eq!(by_id[&2].0, "region/us/orders");
    assert_eq!(
        by_id[&4].0, "unrouted/orders/web/3",
        "no region: the default topic"
    );
    assert_eq!(by_id[&5].0, "region/eu/orders");
    for (_, p) in by_id.values() {
        assert!(is_pseudonym(&p["email"]), "email pseudonymised: {p}");
        assert!(!p.to_string().contains("@example.com"), "{p}");
    }
    assert_eq!(
        by_id[&1].1["email"], by_id[&4].1["email"],
        "the same email gets the same pseudonym"
    );
    assert_ne!(by_id[&1].1["email"], by_id[&2].1["email"]);
    assert!(
        out.iter()
            .all(|m| m["msg_id"].as_str().unwrap().starts_with("pl:shop:")),
        "outputs carry their source position as idempotency id"
    );

    // Live MQTT subscribers get the outputs too.
    let mut live = Vec::new();
    for _ in 0..2 {
        let p = watcher.expect_publish();
        live.push(serde_json::from_slice::<Value>(&p.payload).unwrap()["id"].clone());
    }
    live.sort_by_key(|v| v.as_u64());
    assert_eq!(live, vec![json!(1), json!(5)]);

    let (_, metrics) = node.get("/metrics");
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("sluice_pipeline_messages_in_total{pipeline=\"shop\"} 5"),
        "{text}"
    );
    assert!(text.contains("sluice_handler_invocations_total{pipeline=\"shop\",step=\"1\",handler=\"filter\",version=\"1.0.0\"} 5"), "{text}");
}

/// A pipeline over `work` running one hostile guest.
fn hostile(node: &TestNode, name: &str, guest: &str, limits: Value, config: Value) {
    create_pipeline(
        node,
        name,
        json!({
            "source": "work",
            "steps": [{"handler": guest, "config": config, "limits": limits}],
            "output": "survivors/{topic}",
            "retries": 1,
            "retry_backoff": "1ms",
            "breaker_failures": 0,
        }),
    );
}

#[test]
fn hostile_handlers_dead_letter_with_the_right_reason_and_others_keep_flowing() {
    let node = TestNode::start();
    node.create_stream("work", json!({"subjects": ["work/#"]}));
    node.create_stream("copied", json!({"subjects": ["copied/#"]}));
    node.create_stream("survivors", json!({"subjects": ["survivors/#"]}));
    for g in [
        "infinite-loop",
        "memory-bomb",
        "panic",
        "huge-output",
        "redact-json",
    ] {
        deploy(&node, g, "0.1.0");
    }
    hostile(&node, "spin-fuel", "infinite-loop", json!({}), json!({}));
    hostile(
        &node,
        "spin-clock",
        "infinite-loop",
        json!({"fuel_per_call": 1_000_000_000_000u64, "deadline": "100ms"}),
        json!({}),
    );
    // The same for memory.
    hostile(
        &node,
        "bomb",
        "memory-bomb",
        json!({"memory_bytes_max": "16MiB", "fuel_per_call": 1_000_000_000_000u64, "deadline": "5s"}),
        json!({}),
    );
    hostile(&node, "panicky", "panic", json!({}), json!({}));
    // Writing 8 MiB costs more than the default fuel: give it plenty, so
    // what stops it is the output limit.
    hostile(
        &node,
        "huge",
        "huge-output",
        json!({"fuel_per_call": 1_000_000_000_000u64, "deadline": "5s"}),
        json!({}),
    );
    create_pipeline(
        &node,
        "healthy",
        json!({
            "source": "work",
            "steps": [{"handler": "redact-json", "config": {"fields": []}}],
            "output": "copied/{topic}",
            "retries": 0,
            "breaker_failures": 0,
        }),
    );
    const N: u64 = 20;
    for i in 0..N {
        node.publish(
            &format!("work/{i}"),
            json!({"n": i}).to_string().as_bytes(),
            &[],
        );
    }
    // The healthy pipeline is done long before the deadline-bound one
    // (N messages x 2 attempts x 100 ms) is.
    wait_status(&node, "healthy", 30, |v| v["messages_in"] == N);
    let slow = status(&node, "spin-clock");
    assert!(
        slow["messages_in"].as_u64().unwrap() < N,
        "the healthy pipeline did not wait for the hostile one: {slow}"
    );
    assert_eq!(node.get("/healthz").0, 200);

    // A good message right after the bad ones: every hostile pipeline
    // starts a fresh instance and passes it on.
    node.publish("work/ok", b"ok", &[]);
    for (name, reason) in [
        ("spin-fuel", "fuel_exhausted"),
        ("spin-clock", "deadline"),
        ("bomb", "memory_limit"),
        ("panicky", "trap: "),
        ("huge", "output_limit"),
    ] {
        let st = wait_status(&node, name, 60, |v| {
            v["messages_in"] == N + 1 && v["lag"] == 0
        });
        assert_eq!(st["dead_lettered"], N, "{name}: {st}");
        assert_eq!(
            st["messages_out"], 1,
            "{name}: the ok message got through: {st}"
        );
        assert_eq!(st["retries"], N, "{name}: one retry per message: {st}");
        let dead = read_stream(&node, &format!("{name}-dlq"));
        assert_eq!(dead.len() as u64, N, "{name}");
        for (i, m) in dead.iter().enumerate() {
            let h = &m["headers"];
            let r = h["sluice-dlq-reason"].as_str().unwrap();
            assert!(
                r.starts_with(reason),
                "{name}: reason {r:?}, wanted {reason}"
            );
            assert_eq!(h["sluice-dlq-pipeline"], name);
            assert_eq!(h["sluice-dlq-source"], format!("work/0/{i}"));
            assert_eq!(h["sluice-dlq-attempts"], "2");
            assert_eq!(h["sluice-dlq-handler-version"], "0.1.0");
            assert_eq!(m["topic"], format!("work/{i}"), "the original topic");
            assert_eq!(json_payload(m), json!({"n": i}), "the original payload");
        }
        if name == "panicky" {
            let r = dead[0]["headers"]["sluice-dlq-reason"].as_str().unwrap();
            assert!(r.contains("hostile handler panicked on purpose"), "{r}");
            let bt = dead[0]["headers"]["sluice-dlq-backtrace"]
                .as_str()
                .unwrap_or("");
            assert!(!bt.is_empty(), "a trap carries the guest backtrace");
        }
    }
    assert_eq!(read_stream(&node, "survivors").len(), 5);
    // The healthy pipeline copied every JSON message and dead-lettered the
    // one that was not JSON with the handler's own error.
    let st = wait_status(&node, "healthy", 30, |v| v["messages_in"] == N + 1);
    assert_eq!(st["messages_out"], N, "{st}");
    let dead = read_stream(&node, "healthy-dlq");
    assert_eq!(dead.len(), 1);
    let r = dead[0]["headers"]["sluice-dlq-reason"].as_str().unwrap();
    assert!(r.starts_with("handler_error: bad_json"), "{r}");
    assert_eq!(read_stream(&node, "copied").len() as u64, N);
}

#[test]
fn the_circuit_breaker_pauses_only_the_failing_pipeline_and_a_fix_resumes_it() {
    let node = TestNode::start();
    node.create_stream("in", json!({"subjects": ["in/#"]}));
    node.create_stream("out", json!({"subjects": ["out/#"]}));
    node.create_stream("fine", json!({"subjects": ["fine/#"]}));
    deploy(&node, "panic", "1");
    deploy(&node, "redact-json", "1");
    create_pipeline(
        &node,
        "fragile",
        json!({"source": "in", "steps": [{"handler": "panic"}], "output": "out/{topic}",
               "retries": 0, "breaker_failures": 3, "breaker_open": "1h"}),
    );
    create_pipeline(
        &node,
        "sturdy",
        json!({"source": "in", "steps": [{"handler": "redact-json", "config": {"fields": ["/x"]}}],
               "output": "fine/{topic}"}),
    );
    for i in 0..10 {
        node.publish(
            &format!("in/{i}"),
            json!({"x": i}).to_string().as_bytes(),
            &[],
        );
    }
    let st = wait_status(&node, "fragile", 30, |v| v["state"] == "breaker_open");
    assert_eq!(st["dead_lettered"], 3, "{st}");
    assert_eq!(st["breaker_opens"], 1);
    wait_status(&node, "sturdy", 30, |v| {
        v["messages_in"] == 10 && v["lag"] == 0
    });
    std::thread::sleep(Duration::from_millis(300));
    let st = status(&node, "fragile");
    assert_eq!(st["state"], "breaker_open");
    assert_eq!(st["lag"], 7, "the rest waits in the stream, not lost: {st}");

    // Deploying a fixed chain reloads the pipeline and closes the breaker.
    let (code, v) = node.put_json(
        "/v1/pipelines/fragile",
        &json!({"source": "in", "steps": [{"handler": "redact-json", "config": {"fields": []}}],
                "output": "out/{topic}", "retries": 0, "breaker_failures": 3, "breaker_open": "1h"}),
    );
    assert_eq!(code, 200, "{v}");
    let st = wait_status(&node, "fragile", 30, |v| v["lag"] == 0);
    assert_eq!(st["state"], "running");
    assert_eq!(st["reloads"], 1);
    let out = read_stream(&node, "out");
    let ids: Vec<u64> = out
        .iter()
        .map(|m| json_payload(m)["x"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        (3..10).collect::<Vec<_>>(),
        "exactly the seven that waited"
    );
    assert_eq!(read_stream(&node, "fragile-dlq").len(), 3);
}

#[test]
fn a_reload_under_traffic_neither_loses_nor_repeats_a_message() {
    let node = TestNode::start();
    node.create_stream("feed", json!({"subjects": ["feed/#"]}));
    node.create_stream("clean", json!({"subjects": ["clean/#"]}));
    deploy(&node, "redact-json", "1.0.0");
    deploy(&node, "redact-json", "2.0.0");
    let doc = |version: &str, field: &str| {
        json!({"source": "feed", "steps": [{"handler": "redact-json", "version": version,
               "config": {"fields": [field]}}], "output": "clean/{topic}", "batch_messages_max": 8})
    };
    create_pipeline(&node, "swap", doc("1.0.0", "/a"));
    const N: u64 = 600;
    let url = node.url.clone();
    let producer = std::thread::spawn(move || {
        let agent = crate::support::agent();
        for i in 0..N {
            let body = json!({"i": i, "a": "A", "b": "B"}).to_string();
            let r = agent.post(format!("{url}/v1/topics/feed/x")).send(body);
            assert_eq!(r.unwrap().status(), 200);
        }
    });
    wait_status(&node, "swap", 30, |v| {
        v["messages_in"].as_u64().unwrap() >= N / 3
    });
    let (code, v) = node.put_json("/v1/pipelines/swap", &doc("2.0.0", "/b"));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["steps"][0]["version"], "2.0.0");
    producer.join().unwrap();
    let st = wait_status(&node, "swap", 60, |v| {
        v["lag"] == 0 && v["messages_in"] == N
    });
    assert_eq!(st["reloads"], 1);
    assert_eq!(st["dead_lettered"], 0);
    let out = node.read_all("clean", 0, 0);
    assert_eq!(out.len() as u64, N, "one output per message");
    let mut switched = false;
    for (n, m) in out.iter().enumerate() {
        let p = json_payload(m);
        assert_eq!(p["i"], n as u64, "order kept");
        let v1 = p["a"] == "" && p["b"] == "B";
        let v2 = p["a"] == "A" && p["b"] == "";
        assert!(
            v1 ^ v2,
            "each message went through exactly one version: {p}"
        );
        if v2 {
            switched = true;
        }
        assert!(
            !(switched && v1),
            "no message of the old version after the swap: {p}"
        );
    }
    assert!(switched, "the new version took over");
}

/// A target stream that cannot keep up holds the pipeline back: the runner
/// waits for room (counted in `backpressure_waits`) instead of queuing
/// outputs in memory or dropping them, and every message still comes out
/// once, in order.
#[test]
fn a_full_target_paces_the_pipeline_and_loses_nothing() {
    const MESSAGES: usize = 300;
    let node = TestNode::start();
    node.create_stream("src", json!({"subjects": ["in/#"], "fsync": "never"}));
    // One queued append at a time, each synced to disk before the next.
    node.create_stream(
        "dst",
        json!({"subjects": ["out/#"], "fsync": "always", "queue_messages_max": 1}),
    );
    for i in 0..MESSAGES {
        node.publish("in/x", format!("{{\"n\": {i}}}").as_bytes(), &[]);
    }
    deploy(&node, "passthrough", "1.0.0");
    create_pipeline(
        &node,
        "paced",
        json!({"source": "src", "steps": [{"handler": "passthrough"}], "output": "out/{topic}",
               "batch_messages_max": 100}),
    );
    let st = wait_status(&node, "paced", 60, |v| {
        v["lag"] == 0 && v["messages_out"] == MESSAGES
    });
    assert!(
        st["backpressure_waits"].as_u64().unwrap() > 0,
        "a one-message queue behind fsync was never full: {st}"
    );
    let got: Vec<u64> = read_stream(&node, "dst")
        .iter()
        .map(|m| json_payload(m)["n"].as_u64().unwrap())
        .collect();
    assert_eq!(
        got,
        (0..MESSAGES as u64).collect::<Vec<_>>(),
        "each once, in order"
    );
}

#[test]
fn kill_9_during_a_pipeline_run_loses_and_duplicates_nothing() {
    let mut node = TestNode::start();
    node.create_stream("raw", json!({"subjects": ["raw/#"], "partitions": 2}));
    // A de-duplication window shorter than each outage below: the re-run
    // batch is still recognised, because downtime does not count.
    node.create_stream(
        "safe",
        json!({"subjects": ["safe/#"], "partitions": 2, "dedup_window": "2s"}),
    );
    deploy(&node, "redact-json", "1");
    create_pipeline(
        &node,
        "scrub",
        json!({"source": "raw", "steps": [{"handler": "redact-json", "config": {"fields": ["/secret"]}}],
               "output": "safe/{topic}", "batch_messages_max": 16}),
    );
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let mut next = 0u64;
    let mut rng = rand::rng();
    for _round in 0..4 {
        let stop = Arc::new(AtomicBool::new(false));
        let url = node.url.clone();
        let (acked2, stop2) = (acked.clone(), stop.clone());
        let start = next;
        let producer = std::thread::spawn(move || {
            let agent = crate::support::agent();
            let mut i = start;
            while !stop2.load(Ordering::Relaxed) {
                let body = json!({"id": i, "secret": "hunter2"}).to_string();
                let Ok(r) = agent
                    .post(format!("{url}/v1/topics/raw/k{}", i % 8))
                    .header("sluice-key", format!("k{}", i % 8))
                    .send(body)
                else {
                    return i;
                };
                if r.status() != 200 {
                    return i;
                }
                acked2.lock().unwrap().push(i);
                i += 1;
            }
            i
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(300..900)));
        node.kill9();
        stop.store(true, Ordering::Relaxed);
        next = producer.join().unwrap() + 1;
        std::thread::sleep(Duration::from_millis(2_500));
        node.restart();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "only {} publishes acknowledged",
        acked.len()
    );
    // Everything stored in the source (acknowledged or not) comes out once.
    let stored = read_stream(&node, "raw").len() as u64;
    wait_status(&node, "scrub", 60, |v| v["lag"] == 0);
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for m in read_stream(&node, "safe") {
        let p = json_payload(&m);
        assert_eq!(p["secret"], "", "{p}");
        *seen.entry(p["id"].as_u64().unwrap()).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicated outputs: {dups:?}");
    assert_eq!(seen.len() as u64, stored, "one output per stored message");
    for id in &acked {
        assert!(
            seen.contains_key(id),
            "acknowledged message {id} has no output"
        );
    }
    eprintln!(
        "pipeline crash test: 4 kills, {} acknowledged, {} stored, {} outputs, no loss, no duplicate",
        acked.len(),
        stored,
        seen.len()
    );
}

/// `runners` threads share a pipeline's source partitions: each message is
/// handled once, order holds per key, and the number of runners changes
/// under traffic with nothing lost or repeated.
#[test]
fn runners_share_the_partitions_and_their_number_changes_under_traffic() {
    let node = TestNode::start();
    node.create_stream("raw", json!({"subjects": ["raw/#"], "partitions": 4}));
    // One partition: its offsets are the order the outputs were appended in.
    node.create_stream("safe", json!({"subjects": ["safe/#"]}));
    deploy(&node, "redact-json", "1");
    let doc = |runners: usize| {
        json!({"source": "raw", "steps": [{"handler": "redact-json", "config": {"fields": ["/secret"]}}],
               "output": "safe/{topic}", "batch_messages_max": 8, "runners": runners})
    };
    let (code, v) = node.put_json("/v1/pipelines/par", &doc(5));
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4 partitions"),
        "{v}"
    );
    create_pipeline(&node, "par", doc(2));
    let v = status(&node, "par");
    assert_eq!(v["runners"][0]["partitions"], json!([0, 2]), "{v}");
    assert_eq!(v["runners"][1]["partitions"], json!([1, 3]), "{v}");

    const TOTAL: u64 = 900;
    const KEYS: u64 = 12;
    let url = node.url.clone();
    let producer = std::thread::spawn(move || {
        let agent = crate::support::agent();
        for i in 0..TOTAL {
            let (k, seq) = (i % KEYS, i / KEYS);
            let body = json!({"k": k, "seq": seq, "secret": "hunter2"}).to_string();
            let r = agent
                .post(format!("{url}/v1/topics/raw/k{k}"))
                .header("sluice-key", format!("k{k}"))
                .send(body)
                .expect("publish");
            assert_eq!(r.status(), 200);
        }
    });
    let v = wait_status(&node, "par", 60, |v| v["messages_in"].as_u64() >= Some(200));
    let committed: Vec<u64> = v["runners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["messages_committed"].as_u64().unwrap())
        .collect();
    assert!(committed.iter().all(|n| *n > 0), "both runners work: {v}");
    let (code, v) = node.put_json("/v1/pipelines/par", &doc(3));
    assert_eq!(code, 200, "{v}");
    let v = status(&node, "par");
    assert_eq!(v["runners"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["runners"][0]["partitions"], json!([0, 3]), "{v}");
    wait_status(&node, "par", 60, |v| v["messages_in"].as_u64() >= Some(500));
    let (code, v) = node.put_json("/v1/pipelines/par", &doc(1));
    assert_eq!(code, 200, "{v}");
    producer.join().unwrap();
    let v = wait_status(&node, "par", 60, |v| {
        v["lag"] == 0 && v["messages_out"].as_u64() == Some(TOTAL)
    });
    assert_eq!(v["runners"][0]["partitions"], json!([0, 1, 2, 3]), "{v}");
    assert_eq!(v["reloads"], 2, "{v}");
    // Both count from the last change (a reload brings new step figures).
    assert_eq!(
        v["steps"][0]["invocations"], v["runners"][0]["messages_committed"],
        "{v}"
    );

    let mut next_seq = vec![0u64; KEYS as usize];
    for m in read_stream(&node, "safe") {
        let p = json_payload(&m);
        assert_eq!(p["secret"], "", "{p}");
        let k = p["k"].as_u64().unwrap() as usize;
        assert_eq!(
            p["seq"].as_u64().unwrap(),
            next_seq[k],
            "key k{k} out of order, repeated or missing"
        );
        next_seq[k] += 1;
    }
    assert!(
        next_seq.iter().all(|n| *n == TOTAL / KEYS),
        "every message out once: {next_seq:?}"
    );
}

#[test]
fn pipelines_from_the_config_file_and_the_api_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("redact.wasm");
    std::fs::write(&wasm, crate::guests::guest("redact-json")).unwrap();
    let config = format!(
        r#"
[[streams]]
name = "people"
subjects = ["people/#"]

[[streams]]
name = "anon"
subjects = ["anon/#"]

[[handlers]]
name = "redact-json"
version = "1.0.0"
wasm = "{}"

[[pipelines]]
name = "anonymise"
source = "people"
output = "anon/{{topic}}"
steps = [{{ handler = "redact-json", config = {{ fields = ["/email"], pseudonymize = true }} }}]
"#,
        wasm.display()
    );
    let mut node = TestNode::start_with_config(Some(&config));
    node.create_stream("api-out", json!({"subjects": ["api/#"]}));
    create_pipeline(
        &node,
        "by-api",
        json!({"source": "people", "steps": [{"handler": "redact-json", "config": {"fields": ["/name"]}}],
               "output": "api/{topic}"}),
    );
    let rec = json!({"name": "Eve", "email": "eve@example.com"}).to_string();
    node.publish("people/1", rec.as_bytes(), &[]);
    wait_status(&node, "anonymise", 30, |v| v["messages_out"] == 1);
    let first = json_payload(&read_stream(&node, "anon")[0]);
    node.restart();
    let (code, list) = node.get("/v1/pipelines");
    assert_eq!(code, 200);
    let names: Vec<&str> = list["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["anonymise", "by-api"]);
    node.publish("people/2", rec.as_bytes(), &[]);
    wait_status(&node, "anonymise", 30, |v| {
        v["messages_out"] == 1 && v["lag"] == 0
    });
    wait_status(&node, "by-api", 30, |v| v["lag"] == 0);
    let anon = read_stream(&node, "anon");
    assert_eq!(anon.len(), 2, "the first message was not handled again");
    assert_eq!(
        json_payload(&anon[1])["email"],
        first["email"],
        "pseudonyms are stable across restarts (the tenant secret is kept)"
    );
    assert!(is_pseudonym(&first["email"]));
    let api = read_stream(&node, "api-out");
    assert_eq!(api.len(), 2);
    assert_eq!(json_payload(&api[1])["name"], "");
    let st = status(&node, "anonymise");
    assert_eq!(st["definition"]["source"], "people");
    assert_eq!(st["partitions"][0]["committed"], 2);
}

#[test]
fn bad_handlers_and_pipelines_are_refused_with_the_reason() {
    let node = TestNode::start();
    node.create_stream("src", json!({"subjects": ["src/#"]}));
    let (code, v) = put_wasm(&node, "junk", "1", b"\0asm not really");
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a valid component"),
        "{v}"
    );
    let (code, _) = put_wasm(&node, "junk", "1", b"");
    assert_eq!(code, 400);
    let (code, v) = put_wasm(&node, "bad/name", "1", b"x");
    assert_eq!(code, 404, "a slash is not part of a handler name: {v}");
    let (code, v) = put_wasm(&node, "junk", "-x", b"x");
    assert_eq!(code, 400, "{v}");

    deploy(&node, "redact-json", "1");
    let other = crate::guests::guest("filter");
    let (code, v) = put_wasm(&node, "redact-json", "1", &other);
    assert_eq!(code, 409, "versions are immutable: {v}");

    let base = |steps: Value| json!({"source": "src", "steps": steps, "output": "o/{topic}"});
    for (doc, code, needle) in [
        (base(json!([{"handler": "missing"}])), 400, "not deployed"),
        (
            base(json!([{"handler": "redact-json", "version": "9"}])),
            400,
            "not deployed",
        ),
        (
            base(json!([{"handler": "redact-json", "config": {"fields": ["email"]}}])),
            400,
            "JSON pointers",
        ),
        (
            base(
                json!([{"handler": "redact-json", "config": {"fields": []}, "limits": {"memory_bytes_max": "1TiB"}}]),
            ),
            400,
            "memory_bytes_max",
        ),
        (
            json!({"source": "nope", "steps": [{"handler": "redact-json"}], "output": "o"}),
            400,
            "does not exist",
        ),
        (
            json!({"source": "src", "steps": [{"handler": "redact-json"}], "output": "o/{what}"}),
            400,
            "unknown field",
        ),
        (
            json!({"source": "src", "steps": [{"handler": "redact-json"}]}),
            400,
            "output",
        ),
    ] {
        let (c, v) = node.put_json("/v1/pipelines/p", &doc);
        assert_eq!(c, code, "{doc}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{doc}: {msg:?} lacks {needle:?}");
    }
    let (c, _) = into_json(
        node.agent
            .put(format!("{}/v1/pipelines/p", node.url))
            .send("{not json"),
    );
    assert_eq!(c, 400);
    let (_, list) = node.get("/v1/pipelines");
    assert_eq!(list["pipelines"], json!([]), "nothing half-created");

    // What is in use cannot be pulled from under a pipeline.
    create_pipeline(
        &node,
        "p",
        base(json!([{"handler": "redact-json", "config": {"fields": []}}])),
    );
    assert_eq!(node.delete("/v1/streams/src").0, 409);
    assert_eq!(node.delete("/v1/handlers/redact-json/1").0, 409);
    let (c, v) = node.put_json(
        "/v1/pipelines/p",
        &json!({"source": "other", "steps": [{"handler": "redact-json"}], "output": "o"}),
    );
    assert!(c == 400 || c == 409, "{v}");
    // A loop back into the source is dead-lettered, not published.
    let (c, v) = node.put_json(
        "/v1/pipelines/p",
        &json!({"source": "src", "steps": [{"handler": "redact-json", "config": {"fields": []}}],
                "output": "src/again", "retries": 0}),
    );
    assert_eq!(c, 200, "{v}");
    node.publish("src/1", b"{}", &[]);
    let st = wait_status(&node, "p", 30, |v| v["dead_lettered"] == 1);
    assert!(
        st["last_error"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("output_loop"),
        "{st}"
    );
    assert_eq!(node.delete("/v1/pipelines/p").0, 204);
    assert_eq!(node.get("/v1/pipelines/p").0, 404);
    assert_eq!(node.delete("/v1/handlers/redact-json/1").0, 204);
    assert_eq!(node.delete("/v1/streams/src").0, 204);
}

#[test]
fn a_bad_pipeline_in_the_config_file_stops_start_up_with_file_and_line() {
    let err = crate::support::serve_failing(
        "sluice.toml",
        &[(
            "sluice.toml",
            "[[streams]]\nname = \"s\"\nsubjects = [\"s/#\"]\n\n[[pipelines]]\nname = \"p\"\nsource = \"s\"\noutput = \"o/{nope}\"\nsteps = [{ handler = \"h\" }]\n",
        )],
    );
    assert!(err.contains("sluice.toml:5:"), "{err}");
    assert!(err.contains("unknown field {nope}"), "{err}");
}

#[test]
fn the_anonymise_handler_applies_its_policy_and_audits_what_it_did() {
    let node = TestNode::start();
    node.create_stream("people", json!({"subjects": ["people/#"]}));
    node.create_stream("safe", json!({"subjects": ["safe/#"]}));
    deploy(&node, "anonymise", "1.0.0");
    let policy = json!({
        "rules": [
            {"path": "$.email", "op": "pseudonymize", "format_preserving": true},
            {"path": "$.position", "op": "generalize", "decimals": 2},
            {"path": "$.card", "op": "mask", "keep_last": 4},
        ],
        "scan": {"default": {"op": "replace"}},
    });
    create_pipeline(
        &node,
        "anon",
        json!({"source": "people", "steps": [{"handler": "anonymise", "config": policy}], "output": "safe/{topic}"}),
    );
    let rec = json!({
        "name": "Ada", "email": "ada@example.com", "card": "4111 1111 1111 1111",
        "position": {"lat": 51.507222, "lon": -0.1275},
        "note": "call +44 20 7946 0958 about order 4111111111111112",
    });
    for _ in 0..2 {
        node.publish(
            "people/1",
            rec.to_string().as_bytes(),
            &[("content-type", "application/json")],
        );
    }
    node.publish(
        "people/2",
        b"plain text from 192.168.1.20 and a@b.example",
        &[],
    );
    node.publish("people/3", &[0xff, 0xfe, 0xfd], &[]);
    let st = wait_status(&node, "anon", 30, |v| {
        v["messages_in"] == 4 && v["lag"] == 0
    });
    assert_eq!(st["messages_out"], 3, "{st}");
    assert_eq!(
        st["dead_lettered"], 1,
        "binary payloads are not passed on unscanned"
    );
    let out = read_stream(&node, "safe");
    let a = json_payload(&out[0]);
    let b = json_payload(&out[1]);
    assert_eq!(a, b, "the same input gives the same output");
    let email = a["email"].as_str().unwrap();
    // A keyed pseudonym: hex in both parts (which may by chance spell
    // "ada"), nothing of the original.
    let (local, domain) = email.split_once('@').expect("still an email");
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(
        hex(local) && domain.strip_suffix(".invalid").is_some_and(hex),
        "{email}"
    );
    assert!(local != "ada" && !email.contains("example"), "{email}");
    assert_eq!(a["card"], "**** **** **** 1111");
    assert_eq!(a["position"], json!({"lat": 51.51, "lon": -0.13}));
    assert_eq!(a["note"], "call <PHONE> about order 4111111111111112");
    assert_eq!(a["name"], "Ada", "names are not a pattern entity");
    let audit: Value =
        serde_json::from_str(out[0]["headers"]["sluice-anon-audit"].as_str().unwrap()).unwrap();
    assert_eq!(
        audit,
        json!({"EMAIL": 1, "CREDIT_CARD": 1, "FIELD": 1, "PHONE": 1})
    );
    assert_eq!(
        String::from_utf8(payload(&out[2])).unwrap(),
        "plain text from <IPV4> and <EMAIL>"
    );
    let counters = &st["steps"][0]["counters"];
    assert_eq!(counters["PHONE"], 2, "{st}");
    assert_eq!(counters["IPV4"], 1, "{st}");
    let dead = read_stream(&node, "anon-dlq");
    let r = dead[0]["headers"]["sluice-dlq-reason"].as_str().unwrap();
    assert!(r.starts_with("handler_error: binary_payload"), "{r}");
    let (_, metrics) = node.get("/metrics");
    assert!(
        metrics.as_str().unwrap().contains("sluice_handler_counter_total{pipeline=\"anon\",step=\"1\",handler=\"anonymise\",version=\"1.0.0\",name=\"PHONE\"} 2"),
        "{metrics}"
    );
    // A bad policy is refused with the reason, and nothing changes.
    let (code, v) = node.put_json(
        "/v1/pipelines/anon",
        &json!({"source": "people", "steps": [{"handler": "anonymise", "config": {"rules": [{"path": "email", "op": "redact"}]}}], "output": "safe/{topic}"}),
    );
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must start with '$'"),
        "{v}"
    );
    assert_eq!(status(&node, "anon")["reloads"], 0);
}

/// The same `filter` written in Rust, JavaScript, Python and C, each
/// deployed into a real node and run in a pipeline: each keeps and drops
/// the same messages.
#[test]
fn the_filter_in_every_guest_language_runs_in_a_real_pipeline() {
    let node = TestNode::start();
    node.create_stream("levels", json!({"subjects": ["levels/#"]}));
    node.create_stream("kept", json!({"subjects": ["kept/#"]}));
    for lang in ["rust", "js", "python", "c"] {
        let wasm = crate::guests::polyglot(lang);
        let (code, v) = put_wasm(&node, &format!("filter-{lang}"), "1", &wasm);
        assert_eq!(code, 201, "{lang}: {v}");
        create_pipeline(
            &node,
            &format!("only-errors-{lang}"),
            json!({"source": "levels",
                   "steps": [{"handler": format!("filter-{lang}"), "config": {"field": "/level", "op": "eq", "value": "error"}}],
                   "output": format!("kept/{lang}/{{topic}}"), "retries": 0}),
        );
    }
    for (i, level) in ["info", "error", "warn", "error"].iter().enumerate() {
        node.publish(
            "levels/app",
            json!({"i": i, "level": level}).to_string().as_bytes(),
            &[],
        );
    }
    node.publish("levels/app", b"not json", &[]);
    let mut kept: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for lang in ["rust", "js", "python", "c"] {
        let st = wait_status(&node, &format!("only-errors-{lang}"), 60, |v| {
            v["messages_in"] == 5 && v["lag"] == 0
        });
        assert_eq!(st["filtered"], 2, "{lang}: {st}");
        assert_eq!(
            st["dead_lettered"], 1,
            "{lang}: bad JSON is a handler error: {st}"
        );
        let dead = read_stream(&node, &format!("only-errors-{lang}-dlq"));
        let r = dead[0]["headers"]["sluice-dlq-reason"].as_str().unwrap();
        assert!(r.starts_with("handler_error: bad_json"), "{lang}: {r}");
    }
    for m in read_stream(&node, "kept") {
        let lang = m["topic"]
            .as_str()
            .unwrap()
            .split('/')
            .nth(1)
            .unwrap()
            .to_owned();
        kept.entry(lang)
            .or_default()
            .push(json_payload(&m)["i"].as_u64().unwrap());
    }
    for lang in ["rust", "js", "python", "c"] {
        assert_eq!(kept[lang], vec![1, 3], "{lang}");
    }
}

/// A call with HTTP Basic credentials (or none).
fn call_as(
    node: &TestNode,
    method: &str,
    path: &str,
    who: Option<(&str, &str)>,
    body: Option<&Value>,
) -> (u16, Value, Option<String>) {
    let credentials = who.map(|(u, p)| crate::support::basic(u, p));
    let body = body.map(Value::to_string).unwrap_or_default();
    crate::support::call(node, method, path, credentials.as_deref(), body.as_bytes())
}

#[test]
fn tokens_are_reversible_only_by_an_admin_and_every_reversal_is_audited() {
    let users = format!(
        "[[users]]\nname = \"root\"\npassword_hash = \"{}\"\nadmin = true\n\n\
         [[users]]\nname = \"alice\"\npassword_hash = \"{}\"\nsubscribe = [\"#\"]\n",
        crate::mqtt_auth::hash("root-pw"),
        crate::mqtt_auth::hash("wonderland"),
    );
    let mut node = TestNode::start_with_files(
        Some("[auth]\nusers_file = \"users.toml\"\n"),
        &[("users.toml", &users)],
    );
    node.login("root", "root-pw");
    node.create_stream("people", json!({"subjects": ["people/#"]}));
    node.create_stream("safe", json!({"subjects": ["safe/#"]}));
    deploy(&node, "anonymise", "1.0.0");
    let policy = json!({
        "rules": [{"path": "$.email", "op": "tokenize"}],
        "scan": {"default": {"op": "tokenize"}},
    });
    create_pipeline(
        &node,
        "tok",
        json!({"source": "people", "steps": [{"handler": "anonymise", "config": policy}], "output": "safe/{topic}"}),
    );
    let ada = json!({"email": "ada@example.com", "note": "call +44 20 7946 0958"});
    let bob = json!({"email": "bob@example.com", "note": "nothing here"});
    for rec in [&ada, &ada, &bob] {
        node.publish(
            "people/1",
            rec.to_string().as_bytes(),
            &[("content-type", "application/json")],
        );
    }
    wait_status(&node, "tok", 30, |v| v["messages_out"] == 3);
    let out: Vec<Value> = read_stream(&node, "safe")
        .iter()
        .map(json_payload)
        .collect();
    let t_ada = out[0]["email"].as_str().unwrap().to_owned();
    assert!(t_ada.starts_with("tok_") && t_ada.len() == 36, "{t_ada}");
    assert_eq!(
        out[1]["email"],
        t_ada.as_str(),
        "the same value, the same token"
    );
    let t_bob = out[2]["email"].as_str().unwrap().to_owned();
    assert_ne!(t_bob, t_ada);
    let note = out[0]["note"].as_str().unwrap();
    let t_phone = note.strip_prefix("call ").unwrap().to_owned();
    assert!(t_phone.starts_with("tok_"), "{note}");
    for o in &out {
        let s = o.to_string();
        assert!(!s.contains("example.com") && !s.contains("7946"), "{s}");
    }

    let ask = json!({"tokens": [t_ada, t_phone, "tok_00000000000000000000000000000000"]});
    let reverse = "/v1/tokens/reverse";
    // Nobody, a wrong password, a user who is not an admin: refused.
    let (code, v, challenge) = call_as(&node, "POST", reverse, None, Some(&ask));
    assert_eq!(code, 401, "{v}");
    assert_eq!(challenge.as_deref(), Some("Basic realm=\"sluice\""));
    assert_eq!(v["error"]["code"], "unauthorized");
    let (code, _, _) = call_as(&node, "POST", reverse, Some(("root", "nope")), Some(&ask));
    assert_eq!(code, 401);
    let (code, v, _) = call_as(
        &node,
        "POST",
        reverse,
        Some(("alice", "wonderland")),
        Some(&ask),
    );
    assert_eq!(code, 403, "{v}");
    let (code, v, _) = call_as(
        &node,
        "GET",
        "/v1/audit",
        Some(("alice", "wonderland")),
        None,
    );
    assert_eq!(code, 403, "{v}");
    let (code, v, _) = call_as(&node, "GET", "/v1/audit", Some(("root", "root-pw")), None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["records"], json!([]), "refused calls reversed nothing");

    // The admin gets the values back.
    let (code, v, _) = call_as(
        &node,
        "POST",
        reverse,
        Some(("root", "root-pw")),
        Some(&ask),
    );
    assert_eq!(code, 200, "{v}");
    let r = v["results"].as_array().unwrap();
    assert_eq!(r[0]["value"], "ada@example.com");
    assert_eq!(r[0]["domain"], "EMAIL");
    assert_eq!(r[1]["value"], "+44 20 7946 0958");
    assert_eq!(r[1]["domain"], "PHONE");
    assert_eq!(
        r[2],
        json!({"token": "tok_00000000000000000000000000000000", "found": false})
    );

    // Bad requests say why.
    let (code, v, _) = call_as(
        &node,
        "POST",
        reverse,
        Some(("root", "root-pw")),
        Some(&json!({"tokens": []})),
    );
    assert_eq!(code, 400, "{v}");
    let (code, _, _) = call_as(&node, "GET", reverse, Some(("root", "root-pw")), None);
    assert_eq!(code, 405);

    // The mapping and the tokens survive a kill -9: the same value gets the
    // same token, and the old token still reverses.
    node.restart();
    node.publish(
        "people/1",
        ada.to_string().as_bytes(),
        &[("content-type", "application/json")],
    );
    wait_status(&node, "tok", 30, |v| v["messages_out"] == 1);
    let out: Vec<Value> = read_stream(&node, "safe")
        .iter()
        .map(json_payload)
        .collect();
    assert_eq!(out[3]["email"], t_ada.as_str());
    let ask = json!({"tokens": [t_bob]});
    let (code, v, _) = call_as(
        &node,
        "POST",
        reverse,
        Some(("root", "root-pw")),
        Some(&ask),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["results"][0]["value"], "bob@example.com");

    // Each reversal is in the audit log: who, which tokens, how many were
    // known; never the values.
    let (code, v, _) = call_as(&node, "GET", "/v1/audit", Some(("root", "root-pw")), None);
    assert_eq!(code, 200, "{v}");
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{v}");
    assert_eq!(records[0]["tokens"], json!([t_bob]), "newest first");
    assert_eq!(records[1]["user"], "root");
    assert_eq!(records[1]["action"], "tokens.reverse");
    assert_eq!(records[1]["found"], 2);
    assert!(!v.to_string().contains("example.com"), "{v}");

    // A node without a users file has no admins: reversal is closed.
    let open = TestNode::start();
    let (code, v, _) = call_as(
        &open,
        "POST",
        reverse,
        Some(("root", "root-pw")),
        Some(&ask),
    );
    assert_eq!(code, 403, "{v}");
}
