//! `sluice pub` and `sluice read` as a person at a terminal uses them.

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
