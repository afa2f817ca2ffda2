//! `sluice pub`, `sluice read` and `sluice demo` as a person at a terminal
//! uses them.

use std::process::Command;

use serde_json::json;

use crate::support::{BIN, TestNode};

fn sluice(node: &TestNode, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("SLUICE_URL", &node.url)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pub_and_read_from_a_terminal() {
    let node = TestNode::start();
    node.create_stream("cli", json!({"subjects": ["cli/#"], "partitions": 2}));
    let (ok, out, err) = sluice(
        &node,
        &[
            "pub",
            "cli/a",
            "hello",
            "--key",
            "k1",
            "--header",
            "origin=shell",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("cli partition") && out.contains("offset 0"),
        "{out}"
    );

    let file = node.dir.path().join("payload.bin");
    std::fs::write(&file, b"from a file").unwrap();
    let (ok, _, err) = sluice(
        &node,
        &[
            "pub",
            "cli/a",
            "--file",
            file.to_str().unwrap(),
            "--key",
            "k1",
            "--msg-id",
            "m1",
        ],
    );
    assert!(ok, "{err}");
    let (ok, out, _) = sluice(
        &node,
        &[
            "pub",
            "cli/a",
            "--file",
            file.to_str().unwrap(),
            "--key",
            "k1",
            "--msg-id",
            "m1",
        ],
    );
    assert!(ok && out.contains("duplicate"), "{out}");

    let (ok, out, err) = sluice(&node, &["read", "cli"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].ends_with("cli/a hello"), "{out}");
    assert!(lines[1].ends_with("cli/a from a file"), "{out}");

    let (ok, out, _) = sluice(&node, &["read", "cli", "--json"]);
    assert!(ok);
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["headers"]["origin"], "shell");

    let (ok, _, err) = sluice(&node, &["read", "missing"]);
    assert!(!ok);
    assert!(
        err.contains("404") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn read_follow_prints_new_messages_as_they_arrive() {
    let node = TestNode::start();
    node.create_stream("f", json!({"subjects": ["f/#"]}));
    let mut child = Command::new(BIN)
        .args(["read", "f", "--follow"])
        .env("SLUICE_URL", &node.url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    node.publish("f/x", b"arrived later", &[]);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("follow printed nothing");
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.trim_end().ends_with("f/x arrived later"), "{line}");
}

/// The README's run command: a newcomer sees a record go in and come out
/// anonymised, the same email with the same pseudonym twice.
#[test]
fn the_demo_shows_a_record_going_in_and_coming_out_anonymised() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    // The test suite has built the example handlers already; share them.
    crate::guests::guest("anonymise");
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--http-listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("SLUICE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut published = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        if line.contains("Try it yourself") {
            break;
        }
        if let Some(rest) = line.strip_prefix("<- clean/demo/signups ") {
            published.push(serde_json::from_str::<serde_json::Value>(rest).unwrap());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(published.len(), 2, "{published:?}");
    for p in &published {
        let text = p.to_string();
        for secret in [
            "Ada Lovelace",
            "ada@example.com",
            "7946",
            "4111 1111",
            "5500 0000",
            "51.507222",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(p["email"].as_str().unwrap().ends_with(".invalid"), "{p}");
    }
    assert_eq!(published[0]["email"], published[1]["email"]);
    assert_ne!(published[0]["name"], published[1]["name"]);
    assert_eq!(published[0]["card"], "**** **** **** 1111");
    assert_eq!(
        published[0]["position"],
        serde_json::json!({"lat": 51.51, "lon": -0.13})
    );
    assert_eq!(
        published[1]["note"], "order 4111111111111112 arrived",
        "a decoy stays"
    );
}
