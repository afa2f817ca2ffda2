//! MQTT authentication and ACLs: a users file with Argon2id hashes made by
//! `sluice passwd`, and the reason codes each version gets when refused.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;
use sluice_mqtt::{Bytes, QoS, ReasonCode, Version};

use crate::mqtt_client::{Client, connect_packet};
use crate::support::{BIN, TestNode};

pub(crate) fn hash(password: &str) -> String {
    let mut child = Command::new(BIN)
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let h = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(h.starts_with("$argon2id$"), "{h}");
    h
}

fn node_with_users() -> TestNode {
    let users = format!(
        r#"
[[users]]
name = "alice"
password_hash = "{}"
publish = ["sensors/%c/#"]
subscribe = ["alerts/+", "sensors/#"]

[[users]]
name = "anonymous"
password_hash = "{}"
subscribe = ["public/#"]

[[users]]
name = "root"
password_hash = "{}"
admin = true
"#,
        hash("wonderland"),
        hash("unused"),
        hash("root-pw")
    );
    let mut node = TestNode::start_with_files(
        Some("[auth]\nusers_file = \"users.toml\"\n"),
        &[("users.toml", &users)],
    );
    // The HTTP calls of these tests are an admin's.
    node.login("root", "root-pw");
    node
}

fn login(
    node: &TestNode,
    version: Version,
    user: Option<&str>,
    password: Option<&str>,
    client: &str,
) -> (Option<Client>, ReasonCode) {
    let mut c = connect_packet(version, client);
    c.username = user.map(str::to_owned);
    c.password = password.map(|p| Bytes::copy_from_slice(p.as_bytes()));
    let (client, ack) = Client::connect(node.mqtt, c);
    (
        ack.reason
            .is_error()
            .then_some(())
            .map_or(Some(client), |_| None),
        ack.reason,
    )
}

#[test]
fn credentials_are_checked_with_the_right_reason_per_version() {
    let node = node_with_users();
    assert_eq!(
        login(
            &node,
            Version::V5,
            Some("alice"),
            Some("wonderland"),
            "dev-1"
        )
        .1,
        ReasonCode::SUCCESS
    );
    assert_eq!(
        login(&node, Version::V5, Some("alice"), Some("nope"), "dev-1").1,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    assert_eq!(
        login(&node, Version::V5, Some("mallory"), Some("x"), "m").1,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    // 3.1.1 return code 4 (bad user name or password) arrives as the same reason.
    assert_eq!(
        login(&node, Version::V3_1_1, Some("alice"), Some("nope"), "dev-1").1,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );

    // Mosquitto's client sees the refusal too.
    let port = node.mqtt.port().to_string();
    let out = Command::new("mosquitto_pub")
        .args([
            "-p",
            &port,
            "-u",
            "alice",
            "-P",
            "nope",
            "-i",
            "dev-1",
            "-t",
            "sensors/dev-1/t",
            "-m",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let ok = Command::new("mosquitto_pub")
        .args([
            "-p",
            &port,
            "-u",
            "alice",
            "-P",
            "wonderland",
            "-i",
            "dev-1",
            "-t",
            "sensors/dev-1/t",
            "-m",
            "x",
            "-q",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn acls_limit_publish_and_subscribe() {
    let node = node_with_users();
    node.create_stream("all", json!({"subjects": ["#"]}));
    let (Some(mut alice), _) = login(
        &node,
        Version::V5,
        Some("alice"),
        Some("wonderland"),
        "dev-1",
    ) else {
        panic!()
    };
    assert_eq!(
        alice.publish("sensors/dev-1/temp", b"ok", QoS::AtLeastOnce),
        ReasonCode::SUCCESS
    );
    assert_eq!(
        alice.publish("sensors/dev-2/temp", b"spoof", QoS::AtLeastOnce),
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(
        alice.publish("elsewhere", b"no", QoS::AtLeastOnce),
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(
        alice.subscribe("alerts/fire", QoS::AtLeastOnce),
        vec![ReasonCode::GRANTED_QOS_1]
    );
    assert_eq!(
        alice.subscribe("alerts/#", QoS::AtLeastOnce),
        vec![ReasonCode::NOT_AUTHORIZED]
    );
    let stored = node.read_all("all", 0, 0);
    assert_eq!(
        stored.len(),
        1,
        "refused publishes are not stored: {stored:?}"
    );

    // 3.1.1: SUBACK 0x80; a refused QoS 1 publish is acknowledged (3.1.1 has no way to refuse) and dropped.
    let (Some(mut v3), _) = login(
        &node,
        Version::V3_1_1,
        Some("alice"),
        Some("wonderland"),
        "dev-3",
    ) else {
        panic!()
    };
    let reasons = v3.subscribe("secret/#", QoS::AtLeastOnce);
    assert!(reasons[0].is_error(), "{reasons:?}");
    v3.publish("sensors/dev-9/x", b"dropped", QoS::AtLeastOnce);
    assert_eq!(node.read_all("all", 0, 0).len(), 1);
}

#[test]
fn anonymous_clients_are_refused_unless_allowed() {
    let node = node_with_users();
    assert_eq!(
        login(&node, Version::V5, None, None, "anon").1,
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(
        login(&node, Version::V3_1_1, None, None, "anon").1,
        ReasonCode::NOT_AUTHORIZED
    );

    let users = format!(
        "[[users]]\nname = \"anonymous\"\npassword_hash = \"{}\"\nsubscribe = [\"public/#\"]\n",
        hash("x")
    );
    let node = TestNode::start_with_files(
        Some("[auth]\nusers_file = \"users.toml\"\nallow_anonymous = true\n"),
        &[("users.toml", &users)],
    );
    let (Some(mut anon), _) = login(&node, Version::V5, None, None, "anon") else {
        panic!("anonymous allowed")
    };
    assert_eq!(
        anon.subscribe("public/news", QoS::AtMostOnce),
        vec![ReasonCode::GRANTED_QOS_0]
    );
    assert_eq!(
        anon.subscribe("private/x", QoS::AtMostOnce),
        vec![ReasonCode::NOT_AUTHORIZED]
    );
    assert_eq!(
        anon.publish("public/news", b"x", QoS::AtLeastOnce),
        ReasonCode::NOT_AUTHORIZED
    );
}

#[test]
fn a_bad_users_file_stops_start_up_with_its_line() {
    let err = crate::support::serve_failing(
        "sluice.toml",
        &[
            ("sluice.toml", "[auth]\nusers_file = \"users.toml\"\n"),
            (
                "users.toml",
                "[[users]]\nname = \"x\"\npasword_hash = \"h\"\n",
            ),
        ],
    );
    assert!(
        err.contains("users.toml:3:") && err.contains("unknown field"),
        "{err}"
    );
}

#[test]
fn a_will_outside_the_acl_refuses_the_connect() {
    let node = node_with_users();
    let mut c = connect_packet(Version::V5, "dev-1");
    c.username = Some("alice".into());
    c.password = Some(Bytes::from_static(b"wonderland"));
    c.will = Some(crate::mqtt_client::will("alerts/fire", b"forged"));
    let (_, ack) = Client::connect(node.mqtt, c);
    assert_eq!(
        ack.reason,
        ReasonCode::NOT_AUTHORIZED,
        "a will is a publish and obeys the ACL"
    );
    let mut c = connect_packet(Version::V5, "dev-1");
    c.username = Some("alice".into());
    c.password = Some(Bytes::from_static(b"wonderland"));
    c.will = Some(crate::mqtt_client::will("sensors/dev-1/status", b"offline"));
    let (_, ack) = Client::connect(node.mqtt, c);
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
}
