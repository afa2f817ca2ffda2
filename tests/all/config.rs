//! The config file as an operator meets it: streams declared in it exist at
//! start-up, and a bad file stops the node with the file, line and reason.

use crate::support::TestNode;

fn serve_with(config: &str) -> String {
    crate::support::serve_failing("bad.toml", &[("bad.toml", config)])
}

#[test]
fn invalid_configuration_stops_start_up_with_file_line_and_reason() {
    let err = serve_with("[http]\nlisten = \"127.0.0.1:0\"\npayload_bytes_max = \"huge\"\n");
    assert!(err.contains("bad.toml:3:"), "{err}");
    assert!(err.contains("not a size"), "{err}");

    let err = serve_with(
        "[[streams]]\nname = \"s\"\nsubjects = [\"ok/#\"]\n\n[[streams]]\nname = \"t\"\nsubjects = [\"x/#/y\"]\n",
    );
    assert!(
        err.contains("bad.toml:5:") || err.contains("bad.toml:6:"),
        "{err}"
    );
    assert!(err.contains("'#' must be the last level"), "{err}");

    let err = serve_with("data_dri = \"x\"\n");
    assert!(
        err.contains("bad.toml:1:") && err.contains("unknown field"),
        "{err}"
    );
}

#[test]
fn streams_declared_in_the_config_exist_at_start_up() {
    let node = TestNode::start_with_config(Some(
        "[[streams]]\nname = \"sensors\"\nsubjects = [\"sensors/#\"]\npartitions = 3\nfsync = \"20ms\"\n",
    ));
    let (status, v) = node.get("/v1/streams/sensors");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(v["config"]["fsync"], "20ms");
    let b = node.publish("sensors/1", b"x", &[]);
    assert_eq!(b["appends"][0]["stream"], "sensors");
}

#[test]
fn the_checked_in_example_config_starts_a_node() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../sluice.example.toml"
    ))
    .unwrap();
    let node = TestNode::start_with_config(Some(&example));
    let (status, v) = node.get("/v1/streams/sensors");
    assert_eq!(status, 200, "{v}");
}

#[test]
fn ports_json_names_every_bound_listener() {
    let node = TestNode::start();
    let ports: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(node.data_dir().join("ports.json")).unwrap())
            .unwrap();
    assert_eq!(
        format!("http://{}", ports["http"].as_str().unwrap()),
        node.url
    );
    let mqtt: std::net::SocketAddr = ports["mqtt"].as_str().unwrap().parse().unwrap();
    assert_ne!(mqtt.port(), 0);
    // The MQTT port speaks MQTT: a 3.1.1 CONNECT is accepted.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(mqtt).unwrap();
    s.write_all(&[
        0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
    ])
    .unwrap();
    let mut reply = [0u8; 4];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply, [0x20, 0x02, 0x00, 0x00]);
}
