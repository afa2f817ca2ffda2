//! Interop with Eclipse Paho (Python, MQTT 5): v5 properties, shared
//! subscriptions, topic aliases, and a persistent session resumed across a
//! broker restart. `.ci/run` installs `paho-mqtt` from PyPI.

use std::process::Command;

use crate::support::TestNode;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/interop/paho_check.py"
);

fn paho(node: &TestNode, check: &str) {
    let out = Command::new("python3")
        .arg(SCRIPT)
        .arg(check)
        .arg("127.0.0.1")
        .arg(node.mqtt.port().to_string())
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("No module named 'paho'"),
        "paho-mqtt is needed for these tests (pip install 'paho-mqtt>=2,<3'): {text}"
    );
    assert!(out.status.success(), "paho check {check}: {text}");
}

#[test]
fn paho_v5_properties_shared_subscriptions_and_aliases() {
    let node = TestNode::start();
    paho(&node, "props");
    paho(&node, "shared");
    paho(&node, "alias");
}

#[test]
fn paho_session_resumes_across_a_broker_restart() {
    let mut node = TestNode::start();
    paho(&node, "session-start");
    paho(&node, "session-publish");
    node.kill9();
    node.restart();
    paho(&node, "session-resume");
}
