//! MQTT over TLS (rustls; certificate and key from the config) and over
//! WebSocket (subprotocol `mqtt`), with real clients: Mosquitto's tools
//! verifying a real certificate, and a WebSocket client carrying MQTT frames.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sluice_mqtt::{BytesMut, Packet, QoS, ReasonCode, Version, decode, encode};

use crate::mqtt_client::{Client, connect_packet};
use crate::support::TestNode;

fn ports(node: &TestNode) -> Value {
    serde_json::from_str(&std::fs::read_to_string(node.data_dir().join("ports.json")).unwrap())
        .unwrap()
}

#[test]
fn mqtt_over_tls_with_a_verified_certificate() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = ck.cert.pem();
    let key = ck.signing_key.serialize_pem();
    let node = TestNode::start_with_files(
        Some("[mqtt.tls]\nlisten = \"127.0.0.1:0\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n"),
        &[("cert.pem", &cert), ("key.pem", &key)],
    );
    let port = ports(&node)["mqtt_tls"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let ca = node.dir.path().join("cert.pem");
    let ca = ca.to_str().unwrap();
    let sub = Command::new("mosquitto_sub")
        .args([
            "-h",
            "localhost",
            "-p",
            &port,
            "--cafile",
            ca,
            "-t",
            "secure/#",
            "-C",
            "1",
            "-W",
            "10",
            "-v",
            "-q",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let publ = Command::new("mosquitto_pub")
        .args([
            "-h",
            "localhost",
            "-p",
            &port,
            "--cafile",
            ca,
            "-t",
            "secure/x",
            "-m",
            "over tls",
            "-q",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        publ.status.success(),
        "{}",
        String::from_utf8_lossy(&publ.stderr)
    );
    let out = sub.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "secure/x over tls\n");

    // A client that does not trust the certificate is refused by its own TLS check.
    let untrusting = tempfile::NamedTempFile::new().unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(untrusting.path(), other.cert.pem()).unwrap();
    let refused = Command::new("mosquitto_pub")
        .args([
            "-h",
            "localhost",
            "-p",
            &port,
            "--cafile",
            untrusting.path().to_str().unwrap(),
            "-t",
            "secure/x",
            "-m",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    // Plain MQTT on the TLS port gets nowhere, and the node is fine.
    let mut raw =
        std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    use std::io::{Read, Write};
    raw.write_all(&[
        0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
    ])
    .unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    let n = raw.read(&mut buf).unwrap_or(0);
    assert!(
        n == 0 || buf[0] != 0x20,
        "no CONNACK over a non-TLS connection"
    );
    assert_eq!(node.get("/healthz").0, 200);
}

#[test]
fn a_bad_certificate_stops_start_up_with_the_reason() {
    let err = crate::support::serve_failing(
        "sluice.toml",
        &[
            (
                "sluice.toml",
                "[mqtt.tls]\nlisten = \"127.0.0.1:0\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
            ),
            ("cert.pem", "not a certificate"),
            ("key.pem", "not a key"),
        ],
    );
    assert!(err.contains("TLS"), "{err}");
}

#[test]
fn mqtt_over_websocket_with_the_mqtt_subprotocol() {
    let node = TestNode::start_with_config(Some("[mqtt]\nws_listen = \"127.0.0.1:0\"\n"));
    let addr = ports(&node)["mqtt_ws"].as_str().unwrap().to_owned();
    let mut listener = Client::simple(node.mqtt, Version::V5, "tcp-side");
    listener.subscribe("web/#", QoS::AtLeastOnce);

    use tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/mqtt").into_client_request().unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", "mqtt".parse().unwrap());
    let (mut ws, resp) = tungstenite::connect(req).expect("websocket handshake");
    assert_eq!(resp.headers()["sec-websocket-protocol"], "mqtt");
    let send = |ws: &mut tungstenite::WebSocket<_>, p: &Packet| {
        let mut out = BytesMut::new();
        encode(p, Version::V5, sluice_mqtt::PACKET_BYTES_MAX, &mut out).unwrap();
        ws.send(tungstenite::Message::Binary(out.to_vec().into()))
            .unwrap();
    };
    let recv = |ws: &mut tungstenite::WebSocket<_>| -> Packet {
        let mut buf = BytesMut::new();
        loop {
            if let Some(p) = decode(&mut buf, Version::V5, sluice_mqtt::PACKET_BYTES_MAX).unwrap() {
                return p;
            }
            match ws.read().unwrap() {
                tungstenite::Message::Binary(b) => buf.extend_from_slice(&b),
                other => panic!("unexpected frame {other:?}"),
            }
        }
    };
    send(
        &mut ws,
        &Packet::Connect(connect_packet(Version::V5, "browser")),
    );
    assert!(matches!(recv(&mut ws), Packet::ConnAck(a) if a.reason == ReasonCode::SUCCESS));
    send(
        &mut ws,
        &Packet::Publish(sluice_mqtt::Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "web/page".into(),
            packet_id: sluice_mqtt::PacketId::new(1),
            payload: sluice_mqtt::Bytes::from_static(b"from a browser"),
            properties: Default::default(),
        }),
    );
    assert!(matches!(recv(&mut ws), Packet::PubAck(_)));
    assert_eq!(&listener.expect_publish().payload[..], b"from a browser");

    // Without the subprotocol the upgrade is refused.
    let plain = format!("ws://{addr}/mqtt").into_client_request().unwrap();
    assert!(tungstenite::connect(plain).is_err());
}
