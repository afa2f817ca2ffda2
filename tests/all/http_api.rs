//! The HTTP API as a client uses it: streams, publish, replay, and clear
//! errors for bad input that change nothing.

use serde_json::json;

use crate::support::{TestNode, payload};

#[test]
fn publish_then_replay_by_offset_and_raw() {
    let node = TestNode::start();
    node.create_stream(
        "sensors",
        json!({"subjects": ["sensors/#"], "partitions": 1}),
    );
    let mut offsets = Vec::new();
    for i in 0..5 {
        let body = node.publish(
            "sensors/a/temp",
            format!("{{\"t\":{i}}}").as_bytes(),
            &[
                ("content-type", "application/json"),
                ("sluice-key", "dev-1"),
                ("sluice-header-origin", "test"),
            ],
        );
        let a = &body["appends"][0];
        assert_eq!(a["stream"], "sensors");
        assert_eq!(a["duplicate"], false);
        offsets.push(a["offset"].as_u64().unwrap());
    }
    assert_eq!(
        offsets,
        vec![0, 1, 2, 3, 4],
        "offsets are dense and start at 0"
    );

    let (status, v) = node.get("/v1/streams/sensors/partitions/0/messages?offset=2&limit=2");
    assert_eq!(status, 200);
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["offset"], 2);
    assert_eq!(msgs[0]["topic"], "sensors/a/temp");
    assert_eq!(msgs[0]["key"], "dev-1");
    assert_eq!(msgs[0]["headers"]["origin"], "test");
    assert_eq!(msgs[0]["content_type"], "application/json");
    assert_eq!(payload(&msgs[0]), b"{\"t\":2}");
    assert_eq!(v["next_offset"], 4);

    // One message, raw.
    let mut resp = node
        .agent
        .get(format!(
            "{}/v1/streams/sensors/partitions/0/messages?offset=3",
            node.url
        ))
        .header("accept", "application/octet-stream")
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["sluice-offset"], "3");
    assert_eq!(resp.headers()["sluice-topic"], "sensors/a/temp");
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "{\"t\":3}");

    // Past the end: nothing, and the raw form says 404 in JSON.
    let (status, v) = node.get("/v1/streams/sensors/partitions/0/messages?offset=5");
    assert_eq!((status, v["messages"].as_array().unwrap().len()), (200, 0));
    let (status, _) = crate::support::into_json(
        node.agent
            .get(format!(
                "{}/v1/streams/sensors/partitions/0/messages?offset=99",
                node.url
            ))
            .header("accept", "application/octet-stream")
            .call(),
    );
    assert_eq!(status, 404);
}

#[test]
fn replay_from_a_time() {
    let node = TestNode::start();
    node.create_stream("t", json!({"subjects": ["t/#"]}));
    for i in 0..3 {
        node.publish("t/x", format!("early-{i}").as_bytes(), &[]);
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let cut = humantime_now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    for i in 0..2 {
        node.publish("t/x", format!("late-{i}").as_bytes(), &[]);
    }
    let (status, v) = node.get(&format!(
        "/v1/streams/t/partitions/0/messages?from_time={cut}"
    ));
    assert_eq!(status, 200, "{v}");
    let got: Vec<Vec<u8>> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(payload)
        .collect();
    assert_eq!(got, vec![b"late-0".to_vec(), b"late-1".to_vec()]);
    assert_eq!(v["messages"][0]["offset"], 3);

    let (status, v) = node.get("/v1/streams/t/partitions/0/messages?from_time=yesterday");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("bad_time"))
    );
}

/// The current time as RFC 3339 with milliseconds, UTC.
fn humantime_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date crate in tests.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[test]
fn streams_are_created_listed_updated_and_deleted() {
    let node = TestNode::start();
    let v = node.create_stream(
        "orders",
        json!({"subjects": ["orders/#"], "partitions": 4, "retention": {"max_age": "7d", "max_bytes": "10GiB"}}),
    );
    assert_eq!(v["partitions"].as_array().unwrap().len(), 4);
    assert_eq!(
        v["config"]["retention"]["max_bytes"],
        (10u64 << 30).to_string()
    );

    let (status, v) = node.get("/v1/streams");
    assert_eq!(status, 200);
    assert_eq!(v["streams"][0]["name"], "orders");

    // Same partitions: an update of subjects, 200.
    let (status, v) = node.put_json(
        "/v1/streams/orders",
        &json!({"subjects": ["orders/#", "returns/#"], "partitions": 4}),
    );
    assert_eq!(status, 200, "{v}");
    let b = node.publish("returns/1", b"r", &[]);
    assert_eq!(b["appends"][0]["stream"], "orders");

    // Changing the partition count would move keys: refused.
    let (status, v) = node.put_json(
        "/v1/streams/orders",
        &json!({"subjects": ["orders/#"], "partitions": 8}),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("conflict"))
    );

    let (status, _) = node.delete("/v1/streams/orders");
    assert_eq!(status, 204);
    let (status, v) = node.get("/v1/streams/orders");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("stream_not_found"))
    );
    assert!(
        !node.data_dir().join("streams/default/orders").exists(),
        "files are removed"
    );
    // A publish now lands nowhere.
    let b = node.publish("orders/1", b"x", &[]);
    assert_eq!(b["appends"].as_array().unwrap().len(), 0);
}

#[test]
fn keys_keep_their_partition() {
    let node = TestNode::start();
    node.create_stream("k", json!({"subjects": ["k/#"], "partitions": 8}));
    for key in ["a", "b", "c", "device-42"] {
        let first =
            node.publish("k/x", b"1", &[("sluice-key", key)])["appends"][0]["partition"].clone();
        for _ in 0..3 {
            let p = node.publish(&format!("k/{key}"), b"n", &[("sluice-key", key)])["appends"][0]["partition"].clone();
            assert_eq!(p, first, "key {key} moved partition");
        }
    }
}

#[test]
fn one_publish_reaches_every_matching_stream() {
    let node = TestNode::start();
    node.create_stream("all", json!({"subjects": ["#"]}));
    node.create_stream("temps", json!({"subjects": ["+/temperature"]}));
    let b = node.publish("site-a/temperature", b"21", &[]);
    assert_eq!(crate::support::appended_streams(&b), ["all", "temps"]);
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let node = TestNode::start_with_config(Some("[http]\npayload_bytes_max = \"1KiB\"\n"));
    node.create_stream("s", json!({"subjects": ["s/#"]}));
    node.publish("s/ok", b"kept", &[]);

    let cases: Vec<(u16, &str, (u16, serde_json::Value))> = vec![
        (404, "stream_not_found", node.get("/v1/streams/nope")),
        (
            404,
            "stream_not_found",
            node.get("/v1/streams/nope/partitions/0/messages"),
        ),
        (
            404,
            "partition_not_found",
            node.get("/v1/streams/s/partitions/7/messages"),
        ),
        (
            400,
            "bad_topic",
            node.post_raw("/v1/topics/s/+/x", b"x", &[]),
        ),
        (
            400,
            "bad_topic",
            node.post_raw("/v1/topics/s/%23", b"x", &[]),
        ),
        (
            400,
            "bad_topic",
            node.post_raw("/v1/topics/$SYS/x", b"x", &[]),
        ),
        (
            413,
            "payload_too_large",
            node.post_raw("/v1/topics/s/big", &vec![b'x'; 2048], &[]),
        ),
        (
            400,
            "bad_json",
            node.put_json("/v1/streams/x", &json!({"subjects": ["a"], "partitons": 2})),
        ),
        (
            400,
            "invalid_stream",
            node.put_json("/v1/streams/x", &json!({"subjects": ["a/#/b"]})),
        ),
        (
            400,
            "invalid_stream",
            node.put_json("/v1/streams/bad%20name", &json!({"subjects": ["a"]})),
        ),
        (
            400,
            "bad_parameter",
            node.get("/v1/streams/s/partitions/0/messages?offset=minus-one"),
        ),
        (404, "not_found", node.get("/v2/whatever")),
        (405, "method_not_allowed", node.get("/v1/topics/s/x")),
    ];
    for (status, code, (got_status, body)) in cases {
        assert_eq!(got_status, status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    // Bad JSON through PUT reports where it broke.
    let mut resp = node
        .agent
        .put(format!("{}/v1/streams/x", node.url))
        .send("{\"subjects\": [\"a\",]}")
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.body_mut().read_to_string().unwrap().contains("line 1"));

    // Nothing changed: one stream, one message.
    let (_, v) = node.get("/v1/streams");
    assert_eq!(v["streams"].as_array().unwrap().len(), 1);
    let all = node.read_all("s", 0, 0);
    assert_eq!(all.len(), 1);
    assert_eq!(payload(&all[0]), b"kept");
}

#[test]
fn metrics_report_appends_fsyncs_offsets_and_lag() {
    let node = TestNode::start();
    node.create_stream("m", json!({"subjects": ["m/#"]}));
    for _ in 0..3 {
        node.publish("m/x", b"1234", &[]);
    }
    let (status, _) = node.post_json(
        "/v1/streams/m/groups/g1/commit",
        &json!({"offsets": {"0": 1}}),
    );
    assert_eq!(status, 200);
    let mut resp = node
        .agent
        .get(format!("{}/metrics", node.url))
        .call()
        .unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.body_mut().read_to_string().unwrap();
    for needle in [
        "sluice_appends_total{stream=\"m\"} 3",
        "sluice_stream_end_offset{stream=\"m\",partition=\"0\"} 3",
        "sluice_group_lag{stream=\"m\",group=\"g1\",partition=\"0\"} 2",
        "# TYPE sluice_fsync_seconds histogram",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let fsyncs: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("sluice_fsyncs_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(fsyncs >= 1, "appends under fsync=always must sync");
    assert_eq!(node.get("/healthz").0, 200);
}

#[test]
fn a_full_stream_queue_answers_429_with_retry_after_and_loses_nothing_accepted() {
    let node = TestNode::start();
    node.create_stream("bp", json!({"subjects": ["bp/#"], "queue_messages_max": 1}));
    let url = node.url.clone();
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent = crate::support::agent();
                let mut accepted = Vec::new();
                let mut refused = Vec::new();
                for i in 0..20 {
                    let body = format!("w{w}-{i}");
                    let mut resp = agent
                        .post(format!("{url}/v1/topics/bp/x"))
                        .send(body.as_bytes())
                        .unwrap();
                    match resp.status().as_u16() {
                        200 => accepted.push(body),
                        429 => {
                            let retry = resp
                                .headers()
                                .get("retry-after")
                                .map(|v| v.to_str().unwrap().to_owned());
                            let v: serde_json::Value =
                                serde_json::from_str(&resp.body_mut().read_to_string().unwrap())
                                    .unwrap();
                            refused.push((retry, v["error"]["code"].as_str().unwrap().to_owned()));
                        }
                        other => panic!("unexpected status {other}"),
                    }
                }
                (accepted, refused)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for w in workers {
        let (a, r) = w.join().unwrap();
        accepted.extend(a);
        refused.extend(r);
    }
    assert!(
        !refused.is_empty(),
        "16 producers on a queue of 1 must be pushed back"
    );
    for (retry, code) in &refused {
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(code, "backpressure");
    }
    let mut stored: Vec<String> = node
        .read_all("bp", 0, 0)
        .iter()
        .map(|m| String::from_utf8(payload(m)).unwrap())
        .collect();
    stored.sort();
    accepted.sort();
    assert_eq!(stored, accepted, "exactly the accepted messages are stored");
}
