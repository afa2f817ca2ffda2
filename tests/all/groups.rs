//! Consumer groups over HTTP: fetch from the committed offsets, commit,
//! resume after a restart, long-poll, reset, lag.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{TestNode, payload};

fn fetch(node: &TestNode, group: &str, limit: u32, wait_ms: u64) -> serde_json::Value {
    let (status, v) = node.get(&format!(
        "/v1/streams/g/groups/{group}/messages?limit={limit}&wait_ms={wait_ms}"
    ));
    assert_eq!(status, 200, "{v}");
    v
}

fn payloads(v: &serde_json::Value) -> Vec<String> {
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| String::from_utf8(payload(m)).unwrap())
        .collect()
}

#[test]
fn a_group_resumes_from_its_committed_offset_after_a_restart() {
    let mut node = TestNode::start();
    node.create_stream("g", json!({"subjects": ["g/#"], "partitions": 1}));
    for i in 0..10 {
        node.publish("g/x", format!("m{i}").as_bytes(), &[]);
    }
    let v = fetch(&node, "workers", 4, 0);
    assert_eq!(payloads(&v), ["m0", "m1", "m2", "m3"]);
    // Without a commit, a fetch hands out the same messages again (at-least-once).
    assert_eq!(
        payloads(&fetch(&node, "workers", 4, 0)),
        ["m0", "m1", "m2", "m3"]
    );
    let (status, c) = node.post_json(
        "/v1/streams/g/groups/workers/commit",
        &json!({"offsets": v["next_offsets"]}),
    );
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["lag"], 6);

    node.kill9();
    node.restart();
    let v = fetch(&node, "workers", 100, 0);
    assert_eq!(payloads(&v), ["m4", "m5", "m6", "m7", "m8", "m9"]);
    assert_eq!(v["next_offsets"]["0"], 10);
    let (_, info) = node.get("/v1/streams/g/groups/workers");
    assert_eq!(info["partitions"][0]["committed"], 4);
    assert_eq!(info["lag"], 6);

    // Another group is independent and starts at the beginning.
    assert_eq!(payloads(&fetch(&node, "auditors", 2, 0)), ["m0", "m1"]);
}

#[test]
fn a_fetch_long_polls_until_a_message_arrives() {
    let node = TestNode::start();
    node.create_stream("g", json!({"subjects": ["g/#"], "partitions": 2}));
    let url = node.url.clone();
    let publisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let agent = crate::support::agent();
        agent
            .post(format!("{url}/v1/topics/g/late"))
            .send("late")
            .unwrap();
    });
    let started = Instant::now();
    let v = fetch(&node, "waiter", 10, 10_000);
    let waited = started.elapsed();
    publisher.join().unwrap();
    assert_eq!(payloads(&v), ["late"]);
    assert!(
        waited >= Duration::from_millis(250),
        "returned before the publish: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(8),
        "did not wake on the publish: {waited:?}"
    );

    // With nothing to read, a short wait comes back empty.
    let (status, c) = node.post_json(
        "/v1/streams/g/groups/waiter/commit",
        &json!({"offsets": v["next_offsets"]}),
    );
    assert_eq!(status, 200, "{c}");
    let v = fetch(&node, "waiter", 10, 200);
    assert!(v["messages"].as_array().unwrap().is_empty());
}

#[test]
fn a_group_can_be_reset_to_earliest_latest_an_offset_or_a_time() {
    let node = TestNode::start();
    node.create_stream("g", json!({"subjects": ["g/#"]}));
    for i in 0..3 {
        // Timestamps have millisecond resolution: keep these apart so the
        // reset below has exactly one first message at or after a2's time.
        std::thread::sleep(Duration::from_millis(5));
        node.publish("g/x", format!("a{i}").as_bytes(), &[]);
    }
    std::thread::sleep(Duration::from_millis(50));
    let (_, v) = node.get("/v1/streams/g/partitions/0/messages?offset=2&limit=1");
    let t_last_early = v["messages"][0]["timestamp"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(50));
    for i in 0..2 {
        node.publish("g/x", format!("b{i}").as_bytes(), &[]);
    }
    let reset = |body: serde_json::Value| {
        let (status, v) = node.post_json("/v1/streams/g/groups/r/reset", &body);
        assert_eq!(status, 200, "{v}");
        v
    };
    assert_eq!(reset(json!({"to": "latest"}))["lag"], 0);
    assert!(
        fetch(&node, "r", 10, 0)["messages"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(reset(json!({"to": "earliest"}))["lag"], 5);
    assert_eq!(reset(json!({"offset": 4}))["lag"], 1);
    assert_eq!(payloads(&fetch(&node, "r", 10, 0)), ["b1"]);
    // From a time: the first message at or after it.
    reset(json!({"time": t_last_early}));
    assert_eq!(payloads(&fetch(&node, "r", 10, 0)), ["a2", "b0", "b1"]);

    let (status, v) = node.post_json("/v1/streams/g/groups/r/reset", &json!({"to": "sideways"}));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid"))
    );
    let (status, v) = node.post_json(
        "/v1/streams/g/groups/r/commit",
        &json!({"offsets": {"0": 99}}),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid"))
    );
    let (status, _) = node.post_json(
        "/v1/streams/g/groups/r/commit",
        &json!({"offsets": {"3": 0}}),
    );
    assert_eq!(status, 404);

    let (_, v) = node.get("/v1/streams/g/groups");
    assert_eq!(v["groups"], json!(["r"]));
    assert_eq!(node.delete("/v1/streams/g/groups/r").0, 204);
    let (_, v) = node.get("/v1/streams/g/groups");
    assert_eq!(v["groups"], json!([]));
}
