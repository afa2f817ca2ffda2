//! MQTT end to end: real clients (Mosquitto's command-line tools and a Rust
//! client) against the real binary, for both protocol versions.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use sluice_mqtt::{
    ConnectProperties, Packet, PublishProperties, QoS, ReasonCode, SubscribeProperties,
    Subscription, Version,
};

use crate::mqtt_client::{Client, connect_packet, will};
use crate::support::{TestNode, payload};

/// Runs a Mosquitto command-line client; these tests need Debian's
/// `mosquitto-clients`, which `.ci/run` installs.
fn mosquitto(tool: &str, args: &[&str]) -> std::process::Child {
    Command::new(tool)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} is needed for the MQTT interop tests (apt-get install mosquitto-clients): {e}"))
}

fn output(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn mosquitto_clients_at_every_qos_and_both_versions() {
    let node = TestNode::start();
    node.create_stream("s", json!({"subjects": ["s/#"]}));
    let port = node.mqtt.port().to_string();
    for version in ["mqttv311", "mqttv5"] {
        for qos in ["0", "1", "2"] {
            let topic = format!("s/{version}/q{qos}");
            let sub = mosquitto(
                "mosquitto_sub",
                &[
                    "-p", &port, "-V", version, "-q", qos, "-t", &topic, "-C", "3", "-W", "10",
                    "-v",
                ],
            );
            std::thread::sleep(Duration::from_millis(300));
            for i in 0..3 {
                let p = output(mosquitto(
                    "mosquitto_pub",
                    &[
                        "-p",
                        &port,
                        "-V",
                        version,
                        "-q",
                        qos,
                        "-t",
                        &topic,
                        "-m",
                        &format!("m{i}"),
                    ],
                ));
                assert!(p.is_empty());
            }
            let got = output(sub);
            assert_eq!(
                got,
                format!("{topic} m0\n{topic} m1\n{topic} m2\n"),
                "{version} QoS {qos}"
            );
        }
    }
    // Everything published over MQTT was captured by the stream, in order.
    let stored: Vec<String> = node
        .read_all("s", 0, 0)
        .iter()
        .map(|m| String::from_utf8(payload(m)).unwrap())
        .collect();
    assert_eq!(stored.len(), 18);
}

#[test]
fn http_and_mqtt_share_one_router() {
    let node = TestNode::start();
    node.create_stream("s", json!({"subjects": ["sensors/#"]}));
    let mut sub = Client::simple(node.mqtt, Version::V5, "watcher");
    sub.subscribe("sensors/#", QoS::AtLeastOnce);
    node.publish(
        "sensors/http",
        b"from http",
        &[
            ("sluice-header-origin", "curl"),
            ("content-type", "text/plain"),
        ],
    );
    let p = sub.expect_publish();
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("sensors/http", &b"from http"[..])
    );
    assert_eq!(
        p.qos,
        QoS::AtLeastOnce,
        "HTTP publishes are delivered at QoS 1"
    );
    assert_eq!(p.properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        p.properties.user_properties,
        vec![("origin".to_string(), "curl".to_string())]
    );

    let mut publ = Client::simple(node.mqtt, Version::V5, "producer");
    let props = PublishProperties {
        user_properties: vec![("sluice-key".into(), "dev-7".into())],
        ..Default::default()
    };
    assert_eq!(
        publ.publish_with("sensors/mqtt", b"from mqtt", QoS::AtLeastOnce, false, props),
        ReasonCode::SUCCESS
    );
    let stored = node.read_all("s", 0, 0);
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1]["topic"], "sensors/mqtt");
    assert_eq!(
        stored[1]["key"], "dev-7",
        "a `sluice-key` user property becomes the message key"
    );
    let p = sub.expect_publish();
    assert_eq!(&p.payload[..], b"from mqtt");
}

#[test]
fn retained_messages_are_kept_cleared_and_survive_a_restart() {
    let mut node = TestNode::start();
    let mut c = Client::simple(node.mqtt, Version::V5, "pub");
    assert_eq!(
        c.publish_with("r/a", b"one", QoS::AtLeastOnce, true, Default::default()),
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    c.publish_with("r/b", b"two", QoS::AtLeastOnce, true, Default::default());
    node.restart();
    let port = node.mqtt.port().to_string();
    let got = output(mosquitto(
        "mosquitto_sub",
        &["-p", &port, "-t", "r/#", "-C", "2", "-W", "5", "-v"],
    ));
    let mut lines: Vec<&str> = got.lines().collect();
    lines.sort();
    assert_eq!(lines, ["r/a one", "r/b two"]);
    // An empty retained payload clears it.
    output(mosquitto(
        "mosquitto_pub",
        &["-p", &port, "-t", "r/a", "-r", "-n", "-q", "1"],
    ));
    let mut s = Client::simple(node.mqtt, Version::V5, "late");
    s.send(&Packet::Subscribe(sluice_mqtt::Subscribe {
        packet_id: sluice_mqtt::PacketId::new(1).unwrap(),
        subscriptions: vec![Subscription::new("r/#", QoS::AtLeastOnce)],
        properties: Default::default(),
    }));
    assert!(matches!(s.recv(), Some(Packet::SubAck(_))));
    let p = s.expect_publish();
    assert_eq!((p.topic.as_str(), p.retain), ("r/b", true));
    s.expect_silence(Duration::from_millis(300));
}

#[test]
fn the_will_is_published_on_abnormal_disconnect_only() {
    let node = TestNode::start();
    let mut watcher = Client::simple(node.mqtt, Version::V5, "watcher");
    watcher.subscribe("wills/#", QoS::AtLeastOnce);

    let mut connect = connect_packet(Version::V5, "dies");
    connect.will = Some(will("wills/dies", b"gone"));
    let (c, _) = Client::connect(node.mqtt, connect);
    drop(c); // socket closed without DISCONNECT
    let p = watcher.expect_publish();
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("wills/dies", &b"gone"[..])
    );

    let mut connect = connect_packet(Version::V3_1_1, "leaves");
    connect.will = Some(will("wills/leaves", b"should not appear"));
    let (mut c, _) = Client::connect(node.mqtt, connect);
    c.send(&Packet::Disconnect(Default::default()));
    drop(c);
    watcher.expect_silence(Duration::from_millis(500));
}

#[test]
fn keep_alive_timeout_closes_the_connection_and_publishes_the_will() {
    let node = TestNode::start();
    let mut watcher = Client::simple(node.mqtt, Version::V5, "watcher");
    watcher.subscribe("wills/#", QoS::AtMostOnce);
    let mut connect = connect_packet(Version::V5, "silent");
    connect.keep_alive_s = 1;
    connect.will = Some(will("wills/silent", b"timed out"));
    let (mut c, _) = Client::connect(node.mqtt, connect);
    // Say nothing: after 1.5 s the broker gives up on us.
    match c.recv_within(Duration::from_secs(4)) {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::KEEP_ALIVE_TIMEOUT),
        other => panic!("expected DISCONNECT 0x8D, got {other:?}"),
    }
    let p = watcher.expect_publish();
    assert_eq!(&p.payload[..], b"timed out");
}

#[test]
fn a_persistent_session_keeps_subscriptions_and_queues_while_offline() {
    let node = TestNode::start();
    let mut connect = connect_packet(Version::V5, "durable");
    connect.clean_start = false;
    connect.properties = ConnectProperties {
        session_expiry_interval_s: Some(300),
        ..Default::default()
    };
    let (mut c, ack) = Client::connect(node.mqtt, connect.clone());
    assert!(!ack.session_present);
    c.subscribe("q/#", QoS::AtLeastOnce);
    c.send(&Packet::Disconnect(Default::default()));
    drop(c);

    let mut p = Client::simple(node.mqtt, Version::V5, "producer");
    for i in 0..5 {
        p.publish(
            &format!("q/{i}"),
            format!("offline-{i}").as_bytes(),
            QoS::AtLeastOnce,
        );
    }
    let (mut c, ack) = Client::connect(node.mqtt, connect);
    assert!(ack.session_present, "the session was kept");
    let got: Vec<String> = (0..5)
        .map(|_| String::from_utf8(c.expect_publish().payload.to_vec()).unwrap())
        .collect();
    assert_eq!(
        got,
        [
            "offline-0",
            "offline-1",
            "offline-2",
            "offline-3",
            "offline-4"
        ]
    );
    // The subscription itself survived too.
    p.publish("q/live", b"live", QoS::AtLeastOnce);
    assert_eq!(&c.expect_publish().payload[..], b"live");
}

#[test]
fn unacknowledged_messages_are_resent_with_dup_on_reconnect() {
    let node = TestNode::start();
    let mut connect = connect_packet(Version::V5, "forgetful");
    connect.clean_start = false;
    connect.properties.session_expiry_interval_s = Some(300);
    let (mut c, _) = Client::connect(node.mqtt, connect.clone());
    c.subscribe("d/#", QoS::AtLeastOnce);
    let mut p = Client::simple(node.mqtt, Version::V5, "producer");
    p.publish("d/1", b"must arrive", QoS::AtLeastOnce);
    let first = match c.recv() {
        Some(Packet::Publish(pb)) => pb,
        other => panic!("{other:?}"),
    };
    assert!(!first.dup);
    drop(c); // never acknowledged
    std::thread::sleep(Duration::from_millis(200));
    let (mut c, ack) = Client::connect(node.mqtt, connect);
    assert!(ack.session_present);
    let again = c.expect_publish();
    assert!(again.dup, "redelivery carries DUP");
    assert_eq!(&again.payload[..], b"must arrive");
}

#[test]
fn a_second_connection_takes_the_session_over_with_0x8e() {
    let node = TestNode::start();
    let mut first = Client::simple(node.mqtt, Version::V5, "twin");
    let _second = Client::simple(node.mqtt, Version::V5, "twin");
    match first.recv() {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::SESSION_TAKEN_OVER),
        other => panic!("expected DISCONNECT 0x8E, got {other:?}"),
    }
    assert!(first.recv().is_none(), "and then the socket closes");
}

#[test]
fn shared_subscriptions_hand_each_message_to_one_member() {
    let node = TestNode::start();
    let mut a = Client::simple(node.mqtt, Version::V5, "worker-a");
    let mut b = Client::simple(node.mqtt, Version::V5, "worker-b");
    a.subscribe("$share/workers/jobs/#", QoS::AtLeastOnce);
    b.subscribe("$share/workers/jobs/#", QoS::AtLeastOnce);
    let mut p = Client::simple(node.mqtt, Version::V5, "boss");
    for i in 0..10 {
        p.publish("jobs/x", format!("job-{i}").as_bytes(), QoS::AtLeastOnce);
    }
    let mut got = Vec::new();
    for c in [&mut a, &mut b] {
        while let Some(Packet::Publish(pb)) = c.recv_within(Duration::from_millis(500)) {
            c.ack(&pb);
            got.push(String::from_utf8(pb.payload.to_vec()).unwrap());
        }
    }
    got.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("job-{i}")).collect();
    want.sort();
    assert_eq!(got, want, "every job exactly once across the group");
}

#[test]
fn v5_subscription_options_and_properties_pass_through() {
    let node = TestNode::start();
    let mut c = Client::simple(node.mqtt, Version::V5, "me");
    let mut sub = Subscription::new("o/#", QoS::AtLeastOnce);
    sub.no_local = true;
    c.subscribe_with(vec![sub], SubscribeProperties::default());
    c.subscribe_with(
        vec![Subscription::new("o/ids/#", QoS::AtLeastOnce)],
        SubscribeProperties {
            subscription_identifier: Some(42),
            ..Default::default()
        },
    );
    // No-local: my own publish on o/self does not come back to me.
    c.publish("o/self", b"mine", QoS::AtLeastOnce);
    c.expect_silence(Duration::from_millis(300));

    let mut other = Client::simple(node.mqtt, Version::V5, "other");
    let props = PublishProperties {
        response_topic: Some("replies/me".into()),
        correlation_data: Some(sluice_mqtt::Bytes::from_static(b"\x01\x02")),
        user_properties: vec![("k".into(), "v".into())],
        content_type: Some("application/json".into()),
        payload_format_indicator: Some(true),
        message_expiry_interval_s: Some(120),
        ..Default::default()
    };
    other.publish_with("o/ids/1", b"{}", QoS::AtLeastOnce, false, props);
    let p = c.expect_publish();
    assert_eq!(p.properties.subscription_identifiers, vec![42]);
    assert_eq!(p.properties.response_topic.as_deref(), Some("replies/me"));
    assert_eq!(
        p.properties.correlation_data.as_deref(),
        Some(&b"\x01\x02"[..])
    );
    assert_eq!(
        p.properties.user_properties,
        vec![("k".to_string(), "v".to_string())]
    );
    assert_eq!(
        p.properties.content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(p.properties.payload_format_indicator, Some(true));
    let left = p.properties.message_expiry_interval_s.unwrap();
    assert!((110..=120).contains(&left), "remaining expiry {left}");
}

#[test]
fn malformed_and_oversized_packets_get_a_disconnect_and_the_broker_lives_on() {
    let node = TestNode::start_with_config(Some("[mqtt]\npacket_bytes_max = \"1KiB\"\n"));
    // A PUBLISH announcing 2 MiB: refused from its fixed header.
    let mut c = Client::simple(node.mqtt, Version::V5, "big");
    c.send_raw(&[0x30, 0x80, 0x80, 0x80, 0x01]);
    match c.recv() {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::PACKET_TOO_LARGE),
        other => panic!("expected DISCONNECT 0x95, got {other:?}"),
    }
    // Garbage instead of CONNECT: the connection is dropped.
    let mut raw = std::net::TcpStream::connect(node.mqtt).unwrap();
    use std::io::{Read, Write};
    raw.write_all(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x00])
        .unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(raw.read(&mut buf).unwrap_or(0), 0, "closed without a reply");
    // A wildcard in a topic name: DISCONNECT 0x90.
    let mut c = Client::simple(node.mqtt, Version::V5, "wild");
    c.publish("a/+/b", b"x", QoS::AtMostOnce);
    match c.recv() {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::TOPIC_NAME_INVALID),
        other => panic!("expected DISCONNECT 0x90, got {other:?}"),
    }
    // The broker still serves everyone else.
    let mut ok = Client::simple(node.mqtt, Version::V3_1_1, "fine");
    assert_eq!(
        ok.subscribe("x", QoS::AtLeastOnce),
        vec![ReasonCode::GRANTED_QOS_1]
    );
    assert_eq!(node.get("/healthz").0, 200);
}

#[test]
fn invalid_filters_are_refused_in_suback_per_version() {
    let node = TestNode::start();
    let mut v5 = Client::simple(node.mqtt, Version::V5, "v5");
    assert_eq!(
        v5.subscribe("a/#/b", QoS::AtLeastOnce),
        vec![ReasonCode::TOPIC_FILTER_INVALID]
    );
    let mut v3 = Client::simple(node.mqtt, Version::V3_1_1, "v3");
    // 3.1.1 has one failure code, 0x80; the codec writes any failure that way.
    let reasons = v3.subscribe("a/#/b", QoS::AtLeastOnce);
    assert!(reasons[0].is_error(), "{reasons:?}");
}

#[test]
fn sys_topics_report_broker_statistics() {
    let node = TestNode::start_with_config(Some("[mqtt]\nsys_interval = \"200ms\"\n"));
    let _someone = Client::simple(node.mqtt, Version::V5, "someone");
    std::thread::sleep(Duration::from_millis(500));
    let mut c = Client::simple(node.mqtt, Version::V5, "stats");
    c.send(&Packet::Subscribe(sluice_mqtt::Subscribe {
        packet_id: sluice_mqtt::PacketId::new(1).unwrap(),
        subscriptions: vec![Subscription::new(
            "$SYS/broker/clients/connected",
            QoS::AtMostOnce,
        )],
        properties: Default::default(),
    }));
    assert!(matches!(c.recv(), Some(Packet::SubAck(_))));
    let p = c.expect_publish();
    let n: u64 = std::str::from_utf8(&p.payload).unwrap().parse().unwrap();
    assert!(n >= 1, "{n}");
    // `#` does not match `$SYS` topics.
    let mut all = Client::simple(node.mqtt, Version::V5, "all");
    all.subscribe("#", QoS::AtMostOnce);
    all.expect_silence(Duration::from_millis(600));
}

#[test]
fn qos1_messages_for_a_persistent_session_survive_kill_9_and_come_back_with_dup() {
    let mut node = TestNode::start();
    let connect = persistent("keeper");
    let (mut sub, _) = Client::connect(node.mqtt, connect.clone());
    sub.subscribe("k/#", QoS::AtLeastOnce);

    let mut publ = Client::simple(node.mqtt, Version::V3_1_1, "producer");
    publish_numbered(&mut publ, "k", 0..20);
    // Acknowledge the first 5 only.
    let mut acked = Vec::new();
    for _ in 0..5 {
        let p = sub.expect_publish();
        acked.push(String::from_utf8(p.payload.to_vec()).unwrap());
    }
    std::thread::sleep(Duration::from_millis(300)); // the store drops acknowledged copies asynchronously
    drop(sub);
    drop(publ);
    node.kill9();
    node.restart();

    let (mut sub, ack) = Client::connect(node.mqtt, connect);
    assert!(ack.session_present, "the session survived the crash");
    let mut again = Vec::new();
    while let Some(Packet::Publish(p)) = sub.recv_within(Duration::from_secs(2)) {
        assert!(p.dup, "redelivery after a crash carries DUP: {p:?}");
        sub.ack(&p);
        again.push(String::from_utf8(p.payload.to_vec()).unwrap());
    }
    let want = numbered(5..20);
    assert_eq!(
        again, want,
        "every unacknowledged message, in order, and none of the acknowledged ones"
    );
    // The subscription survived too.
    let mut publ = Client::simple(node.mqtt, Version::V5, "producer2");
    publ.publish("k/after", b"after", QoS::AtLeastOnce);
    assert_eq!(&sub.expect_publish().payload[..], b"after");
}

#[test]
fn a_qos2_publish_received_before_kill_9_is_not_delivered_twice_after_it() {
    let mut node = TestNode::start();
    node.create_stream("q2", json!({"subjects": ["q2/#"]}));
    let connect = persistent("exactly");
    let publish = |payload: &'static [u8], dup: bool| {
        Packet::Publish(sluice_mqtt::Publish {
            dup,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "q2/a".into(),
            packet_id: sluice_mqtt::PacketId::new(7),
            payload: sluice_mqtt::Bytes::from_static(payload),
            properties: PublishProperties::default(),
        })
    };
    let id7 = sluice_mqtt::PubAck::new(sluice_mqtt::PacketId::new(7).unwrap());

    let (mut c, _) = Client::connect(node.mqtt, connect.clone());
    c.send(&publish(b"once", false));
    match c.recv() {
        Some(Packet::PubRec(a)) => assert_eq!(a.reason, ReasonCode::SUCCESS),
        other => panic!("expected PUBREC, got {other:?}"),
    }
    // PUBREC came, PUBREL never left: the node dies in between.
    drop(c);
    node.kill9();
    node.restart();

    let (mut c, ack) = Client::connect(node.mqtt, connect.clone());
    assert!(ack.session_present);
    // The client resends with DUP, as it must: the node knows the id.
    c.send(&publish(b"once", true));
    match c.recv() {
        Some(Packet::PubRec(a)) => assert_eq!(a.reason, ReasonCode::SUCCESS),
        other => panic!("expected PUBREC for the resend, got {other:?}"),
    }
    c.send(&Packet::PubRel(id7.clone()));
    match c.recv() {
        Some(Packet::PubComp(a)) => assert_eq!(
            a.reason,
            ReasonCode::SUCCESS,
            "the id survived the crash (0x92 would mean it was forgotten)"
        ),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    // After PUBCOMP the id is free: a new publish with it is a new message,
    // and its release survives a restart too.
    c.send(&publish(b"new", false));
    assert!(matches!(c.recv(), Some(Packet::PubRec(_))));
    c.send(&Packet::PubRel(id7.clone()));
    assert!(matches!(c.recv(), Some(Packet::PubComp(a)) if a.reason == ReasonCode::SUCCESS));
    drop(c);
    node.kill9();
    node.restart();
    let (mut c, _) = Client::connect(node.mqtt, connect);
    c.send(&Packet::PubRel(id7));
    assert!(
        matches!(c.recv(), Some(Packet::PubComp(a)) if a.reason == ReasonCode::PACKET_IDENTIFIER_NOT_FOUND),
        "a released id is forgotten on disk before PUBCOMP"
    );
    let stored: Vec<String> = node
        .read_all("q2", 0, 0)
        .iter()
        .map(|m| String::from_utf8(payload(m)).unwrap())
        .collect();
    assert_eq!(stored, ["once", "new"], "each message exactly once");
}

/// Publishes `m{i}` to `{prefix}/{i}` at QoS 1 for each `i`, each acknowledged with success.
fn publish_numbered(c: &mut Client, prefix: &str, range: std::ops::Range<u32>) {
    for i in range {
        let r = c.publish(
            &format!("{prefix}/{i}"),
            format!("m{i}").as_bytes(),
            QoS::AtLeastOnce,
        );
        assert_eq!(r, ReasonCode::SUCCESS, "publish {prefix}/{i}");
    }
}

/// The payloads [`publish_numbered`] sends for `range`.
fn numbered(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("m{i}")).collect()
}

/// A v5 CONNECT for a session that outlives its connection (600 s).
fn persistent(client_id: &str) -> sluice_mqtt::Connect {
    let mut connect = connect_packet(Version::V5, client_id);
    connect.clean_start = false;
    connect.properties.session_expiry_interval_s = Some(600);
    connect
}

/// Reads `n` QoS 1 publishes, acknowledging each.
fn read_acked_publishes(c: &mut Client, n: usize) -> Vec<sluice_mqtt::Publish> {
    let mut got = Vec::new();
    while got.len() < n {
        match c.recv_within(Duration::from_secs(10)) {
            Some(Packet::Publish(p)) => {
                c.ack(&p);
                got.push(p);
            }
            other => panic!(
                "after {} messages: expected PUBLISH, got {other:?}",
                got.len()
            ),
        }
    }
    got
}

/// Reads `n` QoS 1 publishes, acknowledging each, and returns their payloads.
fn read_acked(c: &mut Client, n: usize) -> Vec<String> {
    read_acked_publishes(c, n)
        .into_iter()
        .map(|p| String::from_utf8(p.payload.to_vec()).unwrap())
        .collect()
}

/// The `$SYS/broker/messages/…` counters, by last topic level, as the
/// node last published them (they are retained, and sent again every
/// `sys_interval`: a topic seen twice means all have been seen).
fn sys_messages(node: &TestNode) -> std::collections::HashMap<String, u64> {
    let mut stats = Client::simple(node.mqtt, Version::V5, "stats");
    stats.subscribe("$SYS/broker/messages/+", QoS::AtMostOnce);
    let mut seen = std::collections::HashMap::new();
    while let Some(Packet::Publish(p)) = stats.recv_within(Duration::from_secs(5)) {
        let n: u64 = std::str::from_utf8(&p.payload).unwrap().parse().unwrap();
        let name = p.topic.rsplit('/').next().unwrap().to_owned();
        if seen.insert(name, n).is_some() {
            break;
        }
    }
    seen
}

/// Publishes `count` QoS 0 messages of 16 KiB, numbered in their first
/// bytes, to `topic`; returns how long it took.
fn flood_qos0(publ: &mut Client, topic: &str, count: u32) -> Duration {
    let started = std::time::Instant::now();
    let mut body = vec![b'.'; 16 * 1024];
    for i in 0..count {
        body[..4].copy_from_slice(&i.to_be_bytes());
        publ.publish(topic, &body, QoS::AtMostOnce);
    }
    started.elapsed()
}

/// Reads QoS 0 messages until `silence` passes without one; returns their numbers.
fn numbers_received(sub: &mut Client, pause_per_message: Duration, silence: Duration) -> Vec<u32> {
    let mut got = Vec::new();
    while let Some(p) = sub.recv_within(silence) {
        if let Packet::Publish(p) = p {
            got.push(u32::from_be_bytes(p.payload[..4].try_into().unwrap()));
            std::thread::sleep(pause_per_message);
        }
    }
    got
}

#[test]
fn a_publisher_waits_for_a_slow_subscriber_instead_of_its_messages_being_dropped() {
    // A QoS 0 queue of 50 and a subscriber that reads a 16 KiB message a
    // millisecond, behind a small socket buffer: the publisher is far faster.
    // Without pacing the queue overflows and the oldest are dropped; with
    // it, the publisher is held back and the subscriber gets every message.
    for pacing in [false, true] {
        let config = format!(
            "[mqtt]\nsession_queue_messages_max = 50\nsys_interval = \"100ms\"\n\
             publisher_wait_backlog_messages = {}\npublisher_wait_max = \"5s\"\n",
            if pacing { 20 } else { 0 }
        );
        let node = TestNode::start_with_config(Some(&config));
        let (mut sub, _) = Client::connect_with_receive_buffer(
            node.mqtt,
            connect_packet(Version::V5, "slow"),
            16 * 1024,
        );
        sub.subscribe("pace/#", QoS::AtMostOnce);
        let addr = node.mqtt;
        let publisher = std::thread::spawn(move || {
            let mut publ = Client::simple(addr, Version::V5, "fast");
            flood_qos0(&mut publ, "pace/x", 1500);
            publ.send(&Packet::Disconnect(Default::default()));
        });
        let got = numbers_received(&mut sub, Duration::from_millis(1), Duration::from_secs(2));
        publisher.join().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let stats = sys_messages(&node);
        let in_order = got.windows(2).all(|w| w[0] < w[1]);
        assert!(in_order, "pacing {pacing}: numbers rise");
        if pacing {
            assert_eq!(got, (0..1500).collect::<Vec<_>>(), "every message");
            assert_eq!(stats["dropped"], 0, "{stats:?}");
            assert!(stats["publisher_waits"] > 0, "{stats:?}");
        } else {
            assert!(got.len() < 1500, "without pacing the slow one loses some");
            assert_eq!(stats["dropped"], 1500 - got.len() as u64, "{stats:?}");
            assert_eq!(stats["publisher_waits"], 0, "{stats:?}");
        }
    }
}

#[test]
fn a_subscriber_that_stops_reading_holds_its_publisher_back_once_not_for_ever() {
    let node = TestNode::start_with_config(Some(
        "[mqtt]\nsession_queue_messages_max = 50\nsys_interval = \"100ms\"\n\
         publisher_wait_backlog_messages = 20\npublisher_wait_max = \"500ms\"\n",
    ));
    let (mut stuck, _) = Client::connect_with_receive_buffer(
        node.mqtt,
        connect_packet(Version::V5, "stuck"),
        16 * 1024,
    );
    stuck.subscribe("stall/#", QoS::AtMostOnce);
    let mut reader = Client::simple(node.mqtt, Version::V5, "reader");
    reader.subscribe("stall/#", QoS::AtMostOnce);
    let addr = node.mqtt;
    let publisher = std::thread::spawn(move || {
        let mut publ = Client::simple(addr, Version::V5, "pub");
        flood_qos0(&mut publ, "stall/x", 1500)
    });
    let got = numbers_received(&mut reader, Duration::ZERO, Duration::from_secs(2));
    let took = publisher.join().unwrap();
    assert_eq!(
        got,
        (0..1500).collect::<Vec<_>>(),
        "the reading subscriber gets all"
    );
    // Waiting 500 ms for the stuck one after each message would take 750 s.
    assert!(
        took < Duration::from_secs(10),
        "publisher was held {took:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let stats = sys_messages(&node);
    assert!(
        stats["dropped"] > 0,
        "the stuck one's oldest went: {stats:?}"
    );
    drop(stuck);
}

#[test]
fn a_metadata_writer_that_falls_behind_slows_publishers_and_keeps_its_writes_in_order() {
    // A write queue of 2: four QoS 1 publishers to a persistent subscriber
    // keep the writer behind, so publishers wait for it; every stored copy
    // must still land before the delete its acknowledgement causes.
    let mut node = TestNode::start_with_config(Some(
        "[mqtt]\nsys_interval = \"100ms\"\n[limits]\nmeta_queue_requests_max = 2\n",
    ));
    let connect = persistent("kept");
    let (mut sub, _) = Client::connect(node.mqtt, connect.clone());
    sub.subscribe("mw/#", QoS::AtLeastOnce);
    let addr = node.mqtt;
    let publishers: Vec<_> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|name| {
            std::thread::spawn(move || {
                let mut c = Client::simple(addr, Version::V5, &format!("pub-{name}"));
                publish_numbered(&mut c, &format!("mw/{name}"), 0..150);
            })
        })
        .collect();
    let got: Vec<(String, String)> = read_acked_publishes(&mut sub, 600)
        .into_iter()
        .map(|p| (p.topic, String::from_utf8(p.payload.to_vec()).unwrap()))
        .collect();
    for p in publishers {
        p.join().unwrap();
    }
    for name in ["a", "b", "c", "d"] {
        let prefix = format!("mw/{name}/");
        let from_one: Vec<String> = got
            .iter()
            .filter(|(t, _)| t.starts_with(&prefix))
            .map(|(_, m)| m.clone())
            .collect();
        assert_eq!(
            from_one,
            numbered(0..150),
            "publisher {name}: each once, in order"
        );
    }
    sub.expect_silence(Duration::from_millis(300));
    let stats = sys_messages(&node);
    assert!(stats["publisher_waits"] > 0, "publishers waited: {stats:?}");
    // Every acknowledged copy was deleted after it was stored: nothing
    // comes back after a restart.
    drop(sub);
    std::thread::sleep(Duration::from_millis(300));
    node.stop();
    node.restart();
    let (mut sub, ack) = Client::connect(node.mqtt, connect);
    assert!(ack.session_present);
    sub.expect_silence(Duration::from_millis(500));
}

#[test]
fn a_persistent_subscriber_that_stops_reading_gets_every_message_from_disk_in_order() {
    // A queue of 10 in memory, a receive window of 5: most of what follows
    // waits on disk.
    let mut node = TestNode::start_with_config(Some(
        "[mqtt]\nsession_queue_messages_max = 10\nsys_interval = \"200ms\"\n",
    ));
    let mut connect = persistent("slow");
    connect.properties.receive_maximum = Some(5);
    let (mut sub, _) = Client::connect(node.mqtt, connect.clone());
    sub.subscribe("sp/#", QoS::AtLeastOnce);

    let mut publ = Client::simple(node.mqtt, Version::V5, "fast");
    publish_numbered(&mut publ, "sp", 0..300);
    let want = numbered(0..300);
    assert_eq!(read_acked(&mut sub, 300), want, "all of them, in order");
    sub.expect_silence(Duration::from_millis(300));

    let seen = sys_messages(&node);
    assert!(
        seen["spilled"] > 0,
        "the queue overflowed to disk: {seen:?}"
    );
    assert_eq!(seen["dropped"], 0, "and nothing was dropped: {seen:?}");

    // Spilled messages are as durable as the rest: the subscriber stalls
    // again, goes away, and the node is killed.
    publish_numbered(&mut publ, "sp", 300..500);
    drop(sub);
    drop(publ);
    node.kill9();
    node.restart();
    let (mut sub, ack) = Client::connect(node.mqtt, connect.clone());
    assert!(ack.session_present);
    let want = numbered(300..500);
    assert_eq!(read_acked(&mut sub, 200), want, "after kill -9, in order");
    sub.expect_silence(Duration::from_millis(300));
    // Acknowledged means deleted: nothing comes back after another restart.
    drop(sub);
    std::thread::sleep(Duration::from_millis(300));
    node.stop();
    node.restart();
    let (mut sub, _) = Client::connect(node.mqtt, connect);
    sub.expect_silence(Duration::from_millis(500));
}

#[test]
fn a_burst_to_a_stalled_persistent_subscriber_comes_back_whole() {
    // A window of 1 and a queue of 10, so the connection can hold 11 while
    // its mailbox holds 16: a burst leaves messages in the mailbox behind
    // the first one that does not fit, with nothing routed after them.
    let node = TestNode::start_with_config(Some("[mqtt]\nsession_queue_messages_max = 10\n"));
    let mut connect = persistent("burst");
    connect.properties.receive_maximum = Some(1);
    let (mut sub, _) = Client::connect(node.mqtt, connect);
    sub.subscribe("bu/#", QoS::AtLeastOnce);
    let mut publ = Client::simple(node.mqtt, Version::V5, "burster");
    for round in 0..5u32 {
        let range = round * 16..(round + 1) * 16;
        // Sent back to back, acknowledged after: they arrive as one burst.
        for i in range.clone() {
            publ.send(&Packet::Publish(sluice_mqtt::Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: format!("bu/{i}"),
                packet_id: sluice_mqtt::PacketId::new(i as u16 + 1),
                payload: sluice_mqtt::Bytes::from(format!("m{i}")),
                properties: PublishProperties::default(),
            }));
        }
        for _ in range.clone() {
            match publ.recv() {
                Some(Packet::PubAck(a)) => assert_eq!(a.reason, ReasonCode::SUCCESS),
                other => panic!("expected PUBACK, got {other:?}"),
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            read_acked(&mut sub, 16),
            numbered(range),
            "round {round}: all of the burst, in order"
        );
        sub.expect_silence(Duration::from_millis(200));
    }
}

#[test]
fn a_takeover_of_a_stalled_session_gets_what_waited_on_disk_in_order() {
    let node = TestNode::start_with_config(Some("[mqtt]\nsession_queue_messages_max = 10\n"));
    let mut connect = persistent("handover");
    connect.properties.receive_maximum = Some(5);
    let (mut old, _) = Client::connect(node.mqtt, connect.clone());
    old.subscribe("ho/#", QoS::AtLeastOnce);
    let mut publ = Client::simple(node.mqtt, Version::V5, "pusher");
    publish_numbered(&mut publ, "ho", 0..120);
    // A second connection with the same id takes the session while most
    // of it waits on disk; the first never acknowledged anything.
    let (mut new, ack) = Client::connect(node.mqtt, connect);
    assert!(ack.session_present);
    let mut got = Vec::new();
    while got.len() < 120 {
        match new.recv_within(Duration::from_secs(10)) {
            Some(Packet::Publish(p)) => {
                new.ack(&p);
                let m = String::from_utf8(p.payload.to_vec()).unwrap();
                if got.last() != Some(&m) && !got.contains(&m) {
                    got.push(m);
                }
            }
            other => panic!("after {} messages: {other:?}", got.len()),
        }
    }
    let want = numbered(0..120);
    assert_eq!(got, want, "each message, in order, after the takeover");
    new.expect_silence(Duration::from_millis(300));
    drop(old);
}

#[test]
fn a_clean_start_discards_the_stored_session() {
    let mut node = TestNode::start();
    let connect = persistent("fickle");
    let (mut c, _) = Client::connect(node.mqtt, connect.clone());
    c.subscribe("f/#", QoS::AtLeastOnce);
    drop(c);
    node.stop();
    node.restart();
    let mut fresh = connect_packet(Version::V5, "fickle");
    fresh.properties.session_expiry_interval_s = Some(600);
    let (mut c, ack) = Client::connect(node.mqtt, fresh);
    assert!(!ack.session_present);
    let mut p = Client::simple(node.mqtt, Version::V5, "p");
    p.publish("f/x", b"x", QoS::AtLeastOnce);
    c.expect_silence(Duration::from_millis(400));
    drop(c);
    node.restart();
    let (_, ack) = Client::connect(node.mqtt, connect);
    assert!(
        ack.session_present,
        "the new (empty) persistent session is stored"
    );
}

#[test]
fn absurdly_deep_filters_and_topics_are_refused_not_followed() {
    let node = TestNode::start();
    let mut c = Client::simple(node.mqtt, Version::V5, "deep");
    let deep = "/".repeat(65_000);
    assert_eq!(
        c.subscribe(&deep, QoS::AtMostOnce),
        vec![ReasonCode::TOPIC_FILTER_INVALID]
    );
    c.publish(&format!("a{deep}"), b"x", QoS::AtMostOnce);
    match c.recv() {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::TOPIC_NAME_INVALID),
        other => panic!("expected DISCONNECT 0x90, got {other:?}"),
    }
    let mut ok = Client::simple(node.mqtt, Version::V5, "after");
    assert_eq!(
        ok.subscribe("a/b", QoS::AtMostOnce),
        vec![ReasonCode::GRANTED_QOS_0]
    );
}

#[test]
fn an_http_publish_to_an_offline_persistent_session_survives_kill_9() {
    let mut node = TestNode::start();
    let connect = persistent("offline-reader");
    let (mut c, _) = Client::connect(node.mqtt, connect.clone());
    c.subscribe("h/#", QoS::AtLeastOnce);
    c.send(&Packet::Disconnect(Default::default()));
    drop(c);
    std::thread::sleep(Duration::from_millis(200));
    node.publish("h/1", b"via http", &[]);
    node.kill9();
    node.restart();
    let (mut c, ack) = Client::connect(node.mqtt, connect);
    assert!(ack.session_present);
    assert_eq!(
        &c.expect_publish().payload[..],
        b"via http",
        "an acknowledged HTTP publish is held for the session"
    );
}
