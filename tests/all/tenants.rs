//! Tenants over HTTP: users of different tenants on one node, each with
//! its own streams, handlers and pipelines (from the config file's
//! `[[tenants]]` and from the API), its own pseudonymisation secret, its
//! own MQTT topics, retained messages and client ids, and no way to see or
//! touch another's.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_mqtt::{Bytes, Packet, QoS, ReasonCode, Version};

use crate::mqtt_auth::hash;
use crate::mqtt_client::{Client, connect_packet};
use crate::pipelines::{create_pipeline, deploy, is_pseudonym, json_payload, read_stream};
use crate::support::{TestNode, appended_streams, serve_failing};

/// The same policy in both tenants: emails become keyed pseudonyms.
fn policy() -> Value {
    json!({"rules": [{"path": "$.email", "op": "pseudonymize"}]})
}

/// The users file of these tests: `root` admins the default tenant,
/// `acme` and `globex` their own tenants.
fn users() -> String {
    format!(
        r#"
[[users]]
name = "root"
password_hash = "{}"
admin = true

[[users]]
name = "acme"
password_hash = "{}"
admin = true
tenant = "acme"

[[users]]
name = "globex"
password_hash = "{}"
admin = true
tenant = "globex"
"#,
        hash("root-pw"),
        hash("acme-pw"),
        hash("globex-pw"),
    )
}

/// `root` is the default tenant's admin; `acme` and `globex` admin their
/// own tenants. Acme's pipeline comes from the config file.
fn node_with_tenants() -> (TestNode, tempfile::TempDir) {
    // The component file must outlive start-up and restarts.
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("anonymise.wasm");
    std::fs::write(&wasm, crate::guests::guest("anonymise")).unwrap();
    let users = users();
    let config = format!(
        r#"
[auth]
users_file = "users.toml"

[[tenants]]
name = "acme"

[[tenants.streams]]
name = "signups"
subjects = ["signup/#"]

[[tenants.streams]]
name = "safe"
subjects = ["safe/#"]

[[tenants.handlers]]
name = "anonymise"
version = "1.0.0"
wasm = "{}"

[[tenants.pipelines]]
name = "anon"
source = "signups"
output = "safe/{{topic}}"
steps = [{{ handler = "anonymise", config = {{ rules = [{{ path = "$.email", op = "pseudonymize" }}] }} }}]

# Globex's streams and pipeline come over the API.
[[tenants]]
name = "globex"
"#,
        wasm.display()
    );
    let mut node = TestNode::start_with_files(Some(&config), &[("users.toml", &users)]);
    node.login("globex", "globex-pw");
    node.create_stream("signups", json!({"subjects": ["signup/#"]}));
    node.create_stream("safe", json!({"subjects": ["safe/#"]}));
    deploy(&node, "anonymise", "1.0.0");
    create_pipeline(
        &node,
        "anon",
        json!({"source": "signups", "steps": [{"handler": "anonymise", "config": policy()}],
               "output": "safe/{topic}"}),
    );
    (node, dir)
}

fn status(node: &TestNode) -> Value {
    node.get("/v1/pipelines/anon").1
}

fn stream_names(node: &TestNode) -> Vec<String> {
    let (code, v) = node.get("/v1/streams");
    assert_eq!(code, 200, "{v}");
    let mut names: Vec<String> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Publishes a sign-up as the logged-in user and returns the email its
/// pipeline wrote out once `expected_out` messages have come out.
fn email_out(node: &TestNode, expected_out: usize) -> Value {
    let rec = json!({"email": "ann@example.com", "plan": "pro"}).to_string();
    let reply = node.publish("signup/1", rec.as_bytes(), &[]);
    assert_eq!(appended_streams(&reply), vec!["signups"], "{reply}");
    // Wait on the output stream: counters restart with the node, it does not.
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let out = read_stream(node, "safe");
        if out.len() >= expected_out {
            break out;
        }
        assert!(Instant::now() < deadline, "no output: {}", status(node));
        std::thread::sleep(Duration::from_millis(25));
    };
    assert_eq!(out.len(), expected_out, "each sign-up comes out once");
    let doc = json_payload(&out[expected_out - 1]);
    assert_eq!(doc["plan"], "pro", "{doc}");
    doc["email"].clone()
}

#[test]
fn tenants_have_their_own_streams_pipelines_and_pseudonyms() {
    let (mut node, _wasm) = node_with_tenants();

    node.login("acme", "acme-pw");
    let acme = email_out(&node, 1);
    node.login("globex", "globex-pw");
    let globex = email_out(&node, 1);
    assert!(
        is_pseudonym(&acme) && is_pseudonym(&globex),
        "{acme} {globex}"
    );
    assert_ne!(acme, globex, "each tenant's pseudonyms have its own key");

    // Each tenant sees its own streams (the pipeline made its dead-letter
    // stream); the default tenant has none.
    for (user, pw) in [("acme", "acme-pw"), ("globex", "globex-pw")] {
        node.login(user, pw);
        assert_eq!(
            stream_names(&node),
            ["anon-dlq", "safe", "signups"],
            "{user}"
        );
    }
    node.login("root", "root-pw");
    assert!(stream_names(&node).is_empty());
    let (code, v) = node.get("/v1/pipelines");
    assert_eq!(
        (code, v["pipelines"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );
    // A default-tenant publish on the same topic reaches no tenant's stream.
    let reply = node.publish("signup/1", b"{\"email\": \"x@example.com\"}", &[]);
    assert!(appended_streams(&reply).is_empty(), "{reply}");

    // The audit log is per tenant: acme's admin does not see root's reversal.
    let (code, v) = node.post_json("/v1/tokens/reverse", &json!({"tokens": ["tok_unknown"]}));
    assert_eq!(code, 200, "{v}");
    let audit = |node: &TestNode| node.get("/v1/audit").1["records"].as_array().unwrap().len();
    assert_eq!(audit(&node), 1);
    node.login("acme", "acme-pw");
    assert_eq!(audit(&node), 0, "another tenant's audit records");

    // What one tenant creates, another can neither read nor delete.
    node.login("acme", "acme-pw");
    node.create_stream("acme-only", json!({"subjects": ["private/#"]}));
    let (_, metrics) = node.get("/metrics");
    assert!(
        metrics
            .as_str()
            .unwrap_or_default()
            .contains("stream=\"acme-only\"")
    );
    for (user, pw) in [("globex", "globex-pw"), ("root", "root-pw")] {
        node.login(user, pw);
        assert_eq!(node.get("/v1/streams/acme-only").0, 404, "{user}");
        assert_eq!(node.delete("/v1/streams/acme-only").0, 404, "{user}");
        assert_eq!(
            node.get("/v1/pipelines/anon").0,
            if user == "root" { 404 } else { 200 }
        );
    }
    let (_, metrics) = node.get("/metrics");
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        !metrics.contains("acme-only"),
        "root's metrics name acme's stream"
    );
    assert!(metrics.contains("sluice_http_requests_total"), "{metrics}");
    node.login("globex", "globex-pw");
    let (code, metrics) = node.get("/metrics");
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert_eq!(code, 200);
    assert!(metrics.contains("stream=\"signups\""), "{metrics}");
    assert!(!metrics.contains("acme-only"), "{metrics}");
    assert!(
        !metrics.contains("sluice_http_requests_total"),
        "node-wide counters are the operator's: {metrics}"
    );

    // After a restart both tenants' pipelines run again, with the same keys:
    // acme's from the config file, globex's of the same name from the API.
    node.restart();
    node.login("acme", "acme-pw");
    assert_eq!(email_out(&node, 2), acme);
    node.login("globex", "globex-pw");
    assert_eq!(email_out(&node, 2), globex);
}

/// An MQTT client of `user` with `client_id`, and its CONNACK reason.
fn mqtt(node: &TestNode, user: &str, pw: &str, client_id: &str) -> (Client, ReasonCode) {
    let mut c = connect_packet(Version::V5, client_id);
    c.username = Some(user.into());
    c.password = Some(Bytes::from(pw.as_bytes().to_vec()));
    c.properties.session_expiry_interval_s = Some(300);
    let (client, ack) = Client::connect(node.mqtt, c);
    (client, ack.reason)
}

fn subscribed(c: &mut Client, filter: &str) {
    assert_eq!(
        c.subscribe(filter, QoS::AtLeastOnce),
        [ReasonCode::GRANTED_QOS_1],
        "{filter}"
    );
}

#[test]
fn mqtt_clients_meet_only_their_own_tenant() {
    let (mut node, _wasm) = node_with_tenants();
    // The same client id in two tenants: two sessions, neither taken over.
    let (mut acme, r) = mqtt(&node, "acme", "acme-pw", "c1");
    assert_eq!(r, ReasonCode::SUCCESS);
    let (mut globex, r) = mqtt(&node, "globex", "globex-pw", "c1");
    assert_eq!(r, ReasonCode::SUCCESS);
    let (mut root, r) = mqtt(&node, "root", "root-pw", "c1");
    assert_eq!(r, ReasonCode::SUCCESS);
    for c in [&mut acme, &mut globex, &mut root] {
        subscribed(c, "#");
    }
    // Acme's HTTP publish and its pipeline's output reach acme's client,
    // under acme's own topic names, and nobody else.
    node.login("acme", "acme-pw");
    let email = email_out(&node, 1);
    let mut topics = [acme.expect_publish(), acme.expect_publish()].map(|p| p.topic);
    topics.sort();
    assert_eq!(topics, ["safe/signup/1", "signup/1"]);
    // An MQTT publish of acme's is captured by acme's stream and pipeline.
    let rec = json!({"email": "ann@example.com", "plan": "pro"}).to_string();
    let (mut acme_pub, _) = mqtt(&node, "acme", "acme-pw", "publisher");
    assert_eq!(
        acme_pub.publish("signup/2", rec.as_bytes(), QoS::AtLeastOnce),
        ReasonCode::SUCCESS
    );
    let mut seen = [acme.expect_publish(), acme.expect_publish()];
    seen.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(seen[0].topic, "safe/signup/2");
    let out: Value = serde_json::from_slice(&seen[0].payload).unwrap();
    assert_eq!(
        out["email"], email,
        "the same pseudonym, whichever way it came in"
    );
    globex.expect_silence(Duration::from_millis(300));
    root.expect_silence(Duration::from_millis(300));
    // Globex's client hears globex only, under the same topic names.
    let (mut globex_pub, _) = mqtt(&node, "globex", "globex-pw", "publisher");
    globex_pub.publish("signup/3", b"{}", QoS::AtLeastOnce);
    assert_eq!(globex.expect_publish().topic, "signup/3");
    acme.expect_silence(Duration::from_millis(300));
    root.expect_silence(Duration::from_millis(300));

    // Retained messages are per tenant, and survive a restart as such.
    let (code, v) = node.post_raw(
        "/v1/topics/status/acme",
        b"up",
        &[("sluice-retain", "true")],
    );
    assert_eq!(code, 200, "{v}");
    drop((acme, globex, root, acme_pub, globex_pub));
    node.restart();
    // Acme's persistent session `c1` comes back with its `#`, still acme's.
    let mut c = connect_packet(Version::V5, "c1");
    c.clean_start = false;
    c.username = Some("acme".into());
    c.password = Some(Bytes::from_static(b"acme-pw"));
    c.properties.session_expiry_interval_s = Some(300);
    let (mut c1, ack) = Client::connect(node.mqtt, c);
    assert!(ack.session_present, "acme's c1 was restored");
    node.login("root", "root-pw");
    node.publish("x/1", b"root's", &[]);
    node.login("acme", "acme-pw");
    node.publish("restored/1", b"acme's", &[]);
    let mut got = Vec::new();
    while let Some(Packet::Publish(p)) = c1.recv_within(Duration::from_millis(500)) {
        c1.ack(&p);
        got.push(p.topic);
    }
    assert!(got.iter().any(|t| t == "restored/1"), "{got:?}");
    assert!(
        got.iter().all(|t| t != "x/1"),
        "root's message reached acme: {got:?}"
    );
    let (mut acme, _) = mqtt(&node, "acme", "acme-pw", "c2");
    subscribed(&mut acme, "status/#");
    let p = acme.expect_publish();
    assert_eq!(
        (p.topic.as_str(), p.retain, &p.payload[..]),
        ("status/acme", true, &b"up"[..])
    );
    for (user, pw) in [("globex", "globex-pw"), ("root", "root-pw")] {
        let (mut other, _) = mqtt(&node, user, pw, "c2");
        subscribed(&mut other, "status/#");
        subscribed(&mut other, "+/+");
        other.expect_silence(Duration::from_millis(300));
    }

    // The default tenant may not name the prefix other tenants live under.
    let (_, r) = mqtt(&node, "root", "root-pw", "$tenant/acme/c1");
    assert_eq!(r, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    let (mut root, _) = mqtt(&node, "root", "root-pw", "snoop");
    for filter in ["$tenant/acme/#", "$tenant/#", "$share/g/$tenant/acme/#"] {
        assert_eq!(
            root.subscribe(filter, QoS::AtLeastOnce),
            [ReasonCode::NOT_AUTHORIZED],
            "{filter}"
        );
    }
    // The prefix costs another tenant two of a topic's 128 levels.
    let deep = vec!["x"; 127].join("/");
    node.login("acme", "acme-pw");
    let (code, v) = node.post_raw(&format!("/v1/topics/{deep}"), b"{}", &[]);
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (400, Some("bad_topic")),
        "{v}"
    );
    node.login("root", "root-pw");
    assert_eq!(
        node.post_raw(&format!("/v1/topics/{deep}"), b"{}", &[]).0,
        200
    );
    // A tenant's own `$tenant/…` names stay inside it.
    let (mut acme2, _) = mqtt(&node, "acme", "acme-pw", "c3");
    subscribed(&mut acme2, "$tenant/globex/#");
    node.login("globex", "globex-pw");
    node.publish("signup/4", b"{}", &[]);
    acme2.expect_silence(Duration::from_millis(300));
}

#[test]
fn bad_tenants_in_the_config_are_refused_with_file_and_line() {
    for (tenant, reason) in [
        ("no spaces", "users.toml:4:"),
        ("acmee", "tenant \"acmee\" is not declared"),
    ] {
        let users = format!(
            "[[users]]\nname = \"u\"\npassword_hash = \"{}\"\ntenant = \"{tenant}\"\n",
            hash("p")
        );
        let config = "[auth]\nusers_file = \"users.toml\"\n[[tenants]]\nname = \"acme\"\n";
        let err = serve_failing(
            "sluice.toml",
            &[("sluice.toml", config), ("users.toml", &users)],
        );
        assert!(
            err.contains(reason) && err.contains("users.toml:4:"),
            "{tenant}: {err}"
        );
    }
    for (config, at, reason) in [
        (
            "[[tenants]]\nname = \"default\"\n",
            "sluice.toml:1:",
            "declared twice",
        ),
        (
            "[[tenants]]\nname = \"a\"\n\n[[tenants]]\nname = \"a\"\n",
            "sluice.toml:4:",
            "declared twice",
        ),
        (
            "[[tenants]]\nname = \"a b\"\n",
            "sluice.toml:1:",
            "may contain only",
        ),
        (
            "[[tenants]]\nname = \"a\"\nstreams_max = 0\n",
            "sluice.toml:1:",
            "quota of 0",
        ),
        (
            "[[tenants]]\nname = \"a\"\nmqtt_connections_max = 0\n",
            "sluice.toml:1:",
            "quota of 0",
        ),
        (
            "[[tenants]]\nname = \"a\"\npipeline_runners_max = 0\n",
            "sluice.toml:1:",
            "quota of 0",
        ),
        (
            "[[tenants]]\nname = \"a\"\nretained_messages_max = 0\n",
            "sluice.toml:1:",
            "quota of 0",
        ),
        (
            "[[tenants]]\nname = \"a\"\nmqtt_subscriptions_per_client_max = 0\n",
            "sluice.toml:1:",
            "quota of 0",
        ),
        (
            "[[tenants]]\nname = \"a\"\npublish_bytes_per_s_max = \"0KiB\"\n",
            "sluice.toml:1:",
            "quota of 0",
        ),
        (
            "[[tenants]]\nname = \"a\"\npublish_bytes_per_s_max = \"lots\"\n",
            "sluice.toml:3:",
            "\"lots\" is not a size",
        ),
        (
            "[[tenants]]\nname = \"a\"\n[[tenants.streams]]\nname = \"s\"\nsubjects = [\"x/#/y\"]\n",
            "sluice.toml:3:",
            "stream:",
        ),
    ] {
        let err = serve_failing("sluice.toml", &[("sluice.toml", config)]);
        assert!(err.contains(at) && err.contains(reason), "{config}: {err}");
    }
    // Pipelines past their tenant's runners, or the node's: named at the
    // one that goes over, not found out when the node starts them.
    let pipeline = |table: &str, name: &str, runners: usize| {
        format!(
            "[[{table}]]\nname = \"{name}\"\nsource = \"in\"\noutput = \"o\"\nrunners = {runners}\nsteps = [{{ handler = \"h\" }}]\n"
        )
    };
    let tenant = format!(
        "[[tenants]]\nname = \"a\"\npipeline_runners_max = 2\n{}{}",
        pipeline("tenants.pipelines", "p", 2),
        pipeline("tenants.pipelines", "q", 1)
    );
    let node: String = (0..33)
        .map(|i| pipeline("pipelines", &format!("p{i}"), 16))
        .collect();
    for (config, at, reason) in [
        (
            tenant.as_str(),
            "sluice.toml:10:",
            "pipeline \"q\" brings tenant a's pipelines to 3 runners, past its pipeline_runners_max of 2",
        ),
        (
            node.as_str(),
            "sluice.toml:193:",
            "pipeline \"p32\" brings the node's pipelines to 528 runners, past its limit of 512",
        ),
    ] {
        let err = serve_failing("sluice.toml", &[("sluice.toml", config)]);
        assert!(err.contains(at) && err.contains(reason), "{config}: {err}");
    }
}

/// A node where acme has quotas (one stream, 5 publishes a second) and
/// globex, beside it, a message rate of its own that it will not reach, 4 KiB
/// of payload a second, two MQTT clients at once, two subscriptions a
/// client, two retained messages and two pipeline runners; every client of the node may hold
/// four subscriptions, and the node four retained messages.
fn node_with_quotas() -> TestNode {
    let users = users();
    let config = r#"
[auth]
users_file = "users.toml"

[mqtt]
subscriptions_per_client_max = 4
retained_messages_max = 4

[[tenants]]
name = "acme"
streams_max = 1
publish_messages_per_s_max = 5

[[tenants.streams]]
name = "events"
subjects = ["e/#"]

[[tenants]]
name = "globex"
publish_messages_per_s_max = 100000
publish_bytes_per_s_max = "4KiB"
mqtt_connections_max = 2
mqtt_subscriptions_per_client_max = 2
retained_messages_max = 2
pipeline_runners_max = 2

[[tenants.streams]]
name = "events"
subjects = ["e/#"]
"#;
    TestNode::start_with_files(Some(config), &[("users.toml", &users)])
}

/// Asserts a 403 `quota_exceeded` whose message names `quota`.
fn assert_refused_by_quota(code: u16, v: &Value, quota: &str) {
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (403, Some("quota_exceeded")),
        "{v}"
    );
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(quota), "{v}");
}

/// Publishes `n` messages as fast as one client can; (accepted, refused,
/// seconds taken). Every refusal must be a 429 `rate_limited` with
/// `Retry-After`.
fn publish_burst(node: &TestNode, n: usize) -> (usize, usize, f64) {
    let start = Instant::now();
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..n {
        let req = node
            .authorized(node.agent.post(format!("{}/v1/topics/e/{i}", node.url)))
            .send(b"x".as_slice());
        let mut resp = req.expect("transport");
        match resp.status().as_u16() {
            200 => accepted += 1,
            429 => {
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body: Value =
                    serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
                assert_eq!(
                    (retry.as_deref(), body["error"]["code"].as_str()),
                    (Some("1"), Some("rate_limited")),
                    "{body}"
                );
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    (accepted, refused, start.elapsed().as_secs_f64())
}

#[test]
fn a_tenants_quota_slows_that_tenant_only() {
    let mut node = node_with_quotas();
    node.login("acme", "acme-pw");
    let (code, v) = node.put_json("/v1/streams/more", &json!({"subjects": ["m/#"]}));
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (403, Some("quota_exceeded")),
        "{v}"
    );

    let (accepted, refused, secs) = publish_burst(&node, 120);
    assert!(
        refused > 0,
        "120 publishes in {secs:.2} s against 5 a second"
    );
    assert!(
        accepted >= 5,
        "a second's worth goes through at once: {accepted}"
    );
    let allowed = 5.0 + 5.0 * secs + 1.0;
    assert!(
        accepted as f64 <= allowed,
        "{accepted} accepted in {secs:.2} s"
    );
    let (_, v) = node.get("/v1/streams/events");
    let kept: u64 = v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["end_offset"].as_u64().unwrap())
        .sum();
    assert_eq!(kept, accepted as u64, "only the accepted are kept: {v}");

    // Globex, on the same node, has its own allowance and is not slowed.
    node.login("globex", "globex-pw");
    let (accepted, refused, _) = publish_burst(&node, 120);
    assert_eq!((accepted, refused), (120, 0));

    // Over MQTT, acme's QoS 1 publishes past the quota get 0x97.
    std::thread::sleep(Duration::from_millis(1100));
    let (mut c, r) = mqtt(&node, "acme", "acme-pw", "burst");
    assert_eq!(r, ReasonCode::SUCCESS);
    let reasons: Vec<ReasonCode> = (0..60)
        .map(|i| c.publish(&format!("e/{i}"), b"x", QoS::AtLeastOnce))
        .collect();
    assert!(
        reasons.iter().take(5).all(|r| *r == ReasonCode::SUCCESS),
        "{reasons:?}"
    );
    assert!(reasons.contains(&ReasonCode::QUOTA_EXCEEDED), "{reasons:?}");
}

#[test]
fn a_tenants_mqtt_clients_and_payload_bytes_are_capped() {
    let mut node = node_with_quotas();
    let (g1, r) = mqtt(&node, "globex", "globex-pw", "g1");
    assert_eq!(r, ReasonCode::SUCCESS);
    let (g2, r) = mqtt(&node, "globex", "globex-pw", "g2");
    assert_eq!(r, ReasonCode::SUCCESS);
    let (_, r) = mqtt(&node, "globex", "globex-pw", "g3");
    assert_eq!(r, ReasonCode::QUOTA_EXCEEDED, "a third client of globex");
    // A client reconnecting takes over its own place.
    let (g1_again, r) = mqtt(&node, "globex", "globex-pw", "g1");
    assert_eq!(r, ReasonCode::SUCCESS, "g1 takes over its session");
    drop(g1);
    // Other tenants are not counted against globex, nor limited.
    let others: Vec<Client> = (0..3)
        .map(|i| {
            let (c, r) = mqtt(&node, "acme", "acme-pw", &format!("a{i}"));
            assert_eq!(r, ReasonCode::SUCCESS);
            c
        })
        .collect();
    // A client that leaves gives its place back.
    drop(g2);
    let deadline = Instant::now() + Duration::from_secs(5);
    let g3 = loop {
        let (c, r) = mqtt(&node, "globex", "globex-pw", "g3");
        if r == ReasonCode::SUCCESS {
            break c;
        }
        assert_eq!(r, ReasonCode::QUOTA_EXCEEDED);
        assert!(Instant::now() < deadline, "g2's place never came back");
        std::thread::sleep(Duration::from_millis(50));
    };
    drop((g1_again, g3, others));

    // 4 KiB of payload a second: two 2 KiB publishes pass, a third waits
    // (for half a second's refill).
    node.login("globex", "globex-pw");
    let body = vec![b'x'; 2048];
    let publish = |node: &TestNode| {
        let r = node
            .authorized(node.agent.post(format!("{}/v1/topics/e/big", node.url)))
            .send(body.as_slice());
        crate::support::into_json(r)
    };
    assert_eq!(publish(&node).0, 200);
    assert_eq!(publish(&node).0, 200);
    let (code, v) = publish(&node);
    assert_eq!(code, 429, "{v}");
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4096 payload bytes a second"),
        "{v}"
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(publish(&node).0, 200, "the allowance refills");
    // Acme has no byte quota: a larger payload is not refused for its size.
    node.login("acme", "acme-pw");
    std::thread::sleep(Duration::from_millis(1100));
    let (code, v) = crate::support::into_json(
        node.authorized(node.agent.post(format!("{}/v1/topics/e/big", node.url)))
            .send(vec![b'y'; 64 << 10].as_slice()),
    );
    assert_eq!(code, 200, "{v}");
}

#[test]
fn an_mqtt_session_holds_a_bounded_number_of_subscriptions() {
    let node = node_with_quotas();
    let subs = |filters: &[&str]| {
        filters
            .iter()
            .map(|f| sluice_mqtt::Subscription::new(*f, QoS::AtLeastOnce))
            .collect::<Vec<_>>()
    };
    let granted = ReasonCode::GRANTED_QOS_1;
    // Globex's quota: two a client. Past it, 0x97 for each further filter
    // of the same SUBSCRIBE, while the ones before are granted.
    let (mut g, r) = mqtt(&node, "globex", "globex-pw", "gs");
    assert_eq!(r, ReasonCode::SUCCESS);
    assert_eq!(
        g.subscribe_with(subs(&["x/1", "x/2", "x/3"]), Default::default()),
        [granted, granted, ReasonCode::QUOTA_EXCEEDED]
    );
    assert_eq!(
        g.subscribe("x/1", QoS::AtMostOnce),
        [ReasonCode::GRANTED_QOS_0],
        "subscribing again to a filter replaces it"
    );
    // The refused filter was not subscribed: nothing is routed to it.
    let (mut p, _) = mqtt(&node, "globex", "globex-pw", "gp");
    assert_eq!(
        p.publish("x/3", b"m", QoS::AtLeastOnce),
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    assert_eq!(
        p.publish("x/2", b"m", QoS::AtLeastOnce),
        ReasonCode::SUCCESS
    );
    assert_eq!(g.expect_publish().topic, "x/2");
    // Unsubscribing gives a place back.
    assert_eq!(g.unsubscribe("x/2"), [ReasonCode::SUCCESS]);
    assert_eq!(g.subscribe("x/3", QoS::AtLeastOnce), [granted]);
    drop((g, p));

    // Acme has no quota of its own: the node's four apply.
    let (mut a, r) = mqtt(&node, "acme", "acme-pw", "as");
    assert_eq!(r, ReasonCode::SUCCESS);
    assert_eq!(
        a.subscribe_with(
            subs(&["y/1", "y/2", "y/3", "y/4", "y/5"]),
            Default::default()
        ),
        [
            granted,
            granted,
            granted,
            granted,
            ReasonCode::QUOTA_EXCEEDED
        ]
    );
    // A 3.1.1 client gets its one failure code, 0x80.
    let mut c = connect_packet(Version::V3_1_1, "as3");
    c.username = Some("acme".into());
    c.password = Some(Bytes::from_static(b"acme-pw"));
    let (mut v3, ack) = Client::connect(node.mqtt, c);
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    let reasons = v3.subscribe_with(
        subs(&["z/1", "z/2", "z/3", "z/4", "z/5"]),
        Default::default(),
    );
    assert_eq!(reasons[..4], [granted; 4]);
    assert_eq!(reasons[4], ReasonCode::UNSPECIFIED_ERROR);
}

#[test]
fn retained_messages_are_capped_per_tenant_and_per_node() {
    let mut node = node_with_quotas();
    let retain = |c: &mut Client, topic: &str, payload: &[u8]| {
        c.publish_with(topic, payload, QoS::AtLeastOnce, true, Default::default())
    };
    // Globex's quota is two retained messages; a third topic gets 0x97,
    // while replacing or clearing one of its two is always allowed.
    let (mut g, _) = mqtt(&node, "globex", "globex-pw", "gr");
    let first = retain(&mut g, "r/1", b"one");
    assert!(!first.is_error(), "{first:?}");
    assert!(!retain(&mut g, "r/2", b"two").is_error());
    assert_eq!(retain(&mut g, "r/3", b"three"), ReasonCode::QUOTA_EXCEEDED);
    assert!(!retain(&mut g, "r/1", b"one again").is_error());
    assert!(!retain(&mut g, "r/2", b"").is_error(), "clearing r/2");
    assert!(!retain(&mut g, "r/3", b"three").is_error(), "r/2's place");
    // What is retained is what was accepted.
    let (mut s, _) = mqtt(&node, "globex", "globex-pw", "gs");
    assert_eq!(
        s.subscribe("r/#", QoS::AtLeastOnce),
        [ReasonCode::GRANTED_QOS_1]
    );
    let mut got: Vec<(String, Vec<u8>)> = (0..2)
        .map(|_| {
            let p = s.expect_publish();
            (p.topic.to_string(), p.payload.to_vec())
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("r/1".to_string(), b"one again".to_vec()),
            ("r/3".to_string(), b"three".to_vec())
        ]
    );
    s.expect_silence(Duration::from_millis(300));
    drop(s);

    // A retained message past its expiry gives its place back.
    assert!(!retain(&mut g, "r/3", b"").is_error());
    let expiring = sluice_mqtt::PublishProperties {
        message_expiry_interval_s: Some(1),
        ..Default::default()
    };
    assert!(
        !g.publish_with("r/e", b"soon gone", QoS::AtLeastOnce, true, expiring)
            .is_error()
    );
    assert_eq!(retain(&mut g, "r/6", b"six"), ReasonCode::QUOTA_EXCEEDED);
    std::thread::sleep(Duration::from_millis(2100));
    let sixth = retain(&mut g, "r/6", b"six");
    assert!(!sixth.is_error(), "{sixth:?}");
    drop(g);

    // Over HTTP the refusal is a 403 that names the quota, and it is
    // refused whole: the stream that captures the topic gets nothing.
    node.login("globex", "globex-pw");
    let (code, v) = node.post_raw("/v1/topics/e/r4", b"four", &[("sluice-retain", "true")]);
    assert_refused_by_quota(code, &v, "retained_messages_max");
    let (_, v) = node.get("/v1/streams/events");
    assert!(
        v["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["end_offset"] == 0),
        "{v}"
    );

    // The count survives a restart: the stored messages are counted again.
    node.restart();
    let (mut g, _) = mqtt(&node, "globex", "globex-pw", "gr");
    assert_eq!(retain(&mut g, "r/5", b"five"), ReasonCode::QUOTA_EXCEEDED);

    // Acme has no quota of its own: the node's four apply, globex's two
    // included.
    let (mut a, _) = mqtt(&node, "acme", "acme-pw", "ar");
    assert!(!retain(&mut a, "s/1", b"x").is_error());
    assert!(!retain(&mut a, "s/2", b"x").is_error());
    assert_eq!(retain(&mut a, "s/3", b"x"), ReasonCode::QUOTA_EXCEEDED);
}

#[test]
fn a_tenants_pipelines_share_a_bounded_number_of_runners() {
    let mut node = node_with_quotas();
    node.login("globex", "globex-pw");
    node.create_stream("src", json!({"subjects": ["p/#"], "partitions": 4}));
    deploy(&node, "passthrough", "1.0.0");
    let pipeline = |runners: usize| {
        json!({"source": "src", "steps": [{"handler": "passthrough"}],
               "output": "out/{topic}", "runners": runners})
    };
    create_pipeline(&node, "p1", pipeline(2));
    // Globex's two runners are taken: a second pipeline is refused, with
    // the quota named, and does not exist.
    let (code, v) = node.put_json("/v1/pipelines/p2", &pipeline(1));
    assert_refused_by_quota(code, &v, "pipeline_runners_max");
    assert_eq!(node.get("/v1/pipelines/p2").0, 404);
    // A pipeline's own runners do not count against its change.
    let (code, v) = node.put_json("/v1/pipelines/p1", &pipeline(1));
    assert_eq!(code, 200, "{v}");
    create_pipeline(&node, "p2", pipeline(1));
    let (code, v) = node.put_json("/v1/pipelines/p1", &pipeline(2));
    assert_eq!(code, 403, "p2 holds the second runner now: {v}");
}
