//! The HTTP API on a node with a users file: Basic credentials on every
//! route but `/healthz`, the same publish and subscribe ACLs as MQTT, and
//! admin-only management.

use serde_json::json;

use crate::mqtt_auth::hash;
use crate::support::{TestNode, appended_streams, basic, call};

fn node_with_users(extra_config: &str) -> TestNode {
    let users = format!(
        r#"
[[users]]
name = "root"
password_hash = "{}"
admin = true

[[users]]
name = "alice"
password_hash = "{}"
publish = ["sensors/#"]
subscribe = ["sensors/#"]

[[users]]
name = "anonymous"
password_hash = "{}"
subscribe = ["public/#"]
"#,
        hash("root-pw"),
        hash("wonderland"),
        hash("unused"),
    );
    let mut node = TestNode::start_with_files(
        Some(&format!(
            "[auth]\nusers_file = \"users.toml\"\n{extra_config}"
        )),
        &[("users.toml", &users)],
    );
    node.login("root", "root-pw");
    node.create_stream("sensors", json!({"subjects": ["sensors/#"]}));
    node.create_stream("public", json!({"subjects": ["public/#"]}));
    node.create_stream("mixed", json!({"subjects": ["sensors/#", "billing/#"]}));
    node
}

fn status(node: &TestNode, method: &str, path: &str, who: Option<&str>) -> u16 {
    let body: &[u8] = if method == "PUT" {
        br#"{"subjects": ["x/#"]}"#
    } else {
        b"{}"
    };
    call(node, method, path, who, body).0
}

#[test]
fn every_route_but_healthz_needs_credentials_of_a_user() {
    let node = node_with_users("");
    assert_eq!(status(&node, "GET", "/healthz", None), 200);
    for (method, path) in [
        ("POST", "/v1/topics/sensors/a"),
        ("GET", "/v1/streams"),
        ("GET", "/v1/streams/sensors"),
        ("GET", "/v1/streams/sensors/partitions/0/messages?offset=0"),
        ("GET", "/v1/streams/sensors/groups/g/messages"),
        ("PUT", "/v1/streams/new"),
        ("GET", "/v1/pipelines"),
        ("GET", "/metrics"),
    ] {
        let (code, v, challenge) = call(&node, method, path, None, b"x");
        assert_eq!(code, 401, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], "unauthorized", "{method} {path}");
        assert_eq!(challenge.as_deref(), Some("Basic realm=\"sluice\""));
        let wrong = basic("alice", "not-her-password");
        assert_eq!(
            status(&node, method, path, Some(&wrong)),
            401,
            "{method} {path}"
        );
        let nobody = basic("mallory", "wonderland");
        assert_eq!(
            status(&node, method, path, Some(&nobody)),
            401,
            "{method} {path}"
        );
    }
    // Nothing a refused call sent was kept.
    let (_, v) = node.get("/v1/streams/sensors");
    assert_eq!(v["partitions"][0]["end_offset"], 0, "{v}");
    let (code, _) = node.get("/v1/streams/new");
    assert_eq!(code, 404);
}

#[test]
fn publish_and_read_follow_the_users_acls() {
    let node = node_with_users("");
    let alice = basic("alice", "wonderland");
    let alice = Some(alice.as_str());
    // Publish: only where her publish ACL reaches.
    let (code, v, _) = call(&node, "POST", "/v1/topics/sensors/t1", alice, b"21.5");
    assert_eq!(code, 200, "{v}");
    assert_eq!(appended_streams(&v), ["mixed", "sensors"], "{v}");
    let (code, v, _) = call(&node, "POST", "/v1/topics/public/news", alice, b"no");
    assert_eq!(code, 403, "{v}");
    assert_eq!(v["error"]["code"], "forbidden");
    assert!(
        node.read_all("public", 0, 0).is_empty(),
        "a refused publish is not stored"
    );

    // Read: a stream whose every subject her subscribe ACL covers.
    let replay = |stream: &str| {
        call(
            &node,
            "GET",
            &format!("/v1/streams/{stream}/partitions/0/messages?offset=0"),
            alice,
            b"",
        )
    };
    let (code, v, _) = replay("sensors");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["messages"].as_array().unwrap().len(), 1);
    for stream in ["public", "mixed"] {
        let (code, v, _) = replay(stream);
        assert_eq!(code, 403, "{stream}: {v}");
        for path in [
            format!("/v1/streams/{stream}"),
            format!("/v1/streams/{stream}/groups"),
            format!("/v1/streams/{stream}/groups/g/messages"),
        ] {
            assert_eq!(status(&node, "GET", &path, alice), 403, "{path}");
        }
        let commit = format!("/v1/streams/{stream}/groups/g/commit");
        assert_eq!(status(&node, "POST", &commit, alice), 403, "{commit}");
    }
    // A group of a stream she may read is hers to use.
    let (code, v, _) = call(
        &node,
        "GET",
        "/v1/streams/sensors/groups/g/messages?limit=10",
        alice,
        b"",
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["messages"].as_array().unwrap().len(), 1, "{v}");
    // The list shows only what she may read.
    let (code, v, _) = call(&node, "GET", "/v1/streams", alice, b"");
    assert_eq!(code, 200);
    let names: Vec<&str> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sensors"], "{v}");
    // An unknown stream is still a 404 to her.
    assert_eq!(status(&node, "GET", "/v1/streams/nope", alice), 404);
}

#[test]
fn managing_streams_pipelines_and_metrics_is_for_admins() {
    let node = node_with_users("");
    let alice = basic("alice", "wonderland");
    let root = basic("root", "root-pw");
    for (method, path) in [
        ("PUT", "/v1/streams/new"),
        ("DELETE", "/v1/streams/sensors"),
        ("DELETE", "/v1/streams/sensors/groups/g"),
        ("GET", "/v1/pipelines"),
        ("GET", "/v1/handlers"),
        ("PUT", "/v1/pipelines/p"),
        ("GET", "/metrics"),
    ] {
        let (code, v, _) = call(
            &node,
            method,
            path,
            Some(&alice),
            br#"{"subjects": ["x/#"]}"#,
        );
        assert_eq!(code, 403, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], "forbidden", "{method} {path}");
    }
    let (code, _) = node.get("/v1/streams/sensors");
    assert_eq!(code, 200, "the refused delete left the stream");
    assert_eq!(status(&node, "PUT", "/v1/streams/new", Some(&root)), 201);
    assert_eq!(status(&node, "GET", "/metrics", Some(&root)), 200);
    assert_eq!(status(&node, "GET", "/v1/pipelines", Some(&root)), 200);
    assert_eq!(status(&node, "DELETE", "/v1/streams/new", Some(&root)), 204);
}

#[test]
fn anonymous_callers_get_the_anonymous_users_acl_when_allowed() {
    let node = node_with_users("allow_anonymous = true\n");
    node.publish("public/news", b"hello", &[]);
    let (code, v, _) = call(
        &node,
        "GET",
        "/v1/streams/public/partitions/0/messages?offset=0",
        None,
        b"",
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["messages"].as_array().unwrap().len(), 1);
    assert_eq!(
        status(&node, "GET", "/v1/streams/sensors", None),
        403,
        "beyond its ACL"
    );
    assert_eq!(
        status(&node, "POST", "/v1/topics/public/news", None),
        403,
        "anonymous may not publish"
    );
    assert_eq!(status(&node, "PUT", "/v1/streams/new", None), 403);
    // Wrong credentials are still refused, not taken for anonymous.
    let wrong = basic("alice", "nope");
    assert_eq!(
        status(&node, "GET", "/v1/streams/public", Some(&wrong)),
        401
    );
}

#[test]
fn the_command_line_client_sends_a_users_credentials() {
    let node = node_with_users("");
    let run = |user: Option<&str>, args: &[&str]| {
        let mut cmd = std::process::Command::new(crate::support::BIN);
        cmd.args(args).env("SLUICE_URL", &node.url);
        if let Some(u) = user {
            cmd.env("SLUICE_USER", u);
        }
        cmd.output().unwrap()
    };
    let out = run(None, &["pub", "sensors/cli", "from-the-cli"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401"), "{err}");
    let out = run(
        Some("alice:wonderland"),
        &["pub", "sensors/cli", "from-the-cli"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(Some("alice:wonderland"), &["read", "sensors"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("from-the-cli"));
}
