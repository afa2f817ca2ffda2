//! Idempotent publishing: a repeated `Sluice-Msg-Id` within the window is
//! acknowledged with the first copy's position and stored once, also across
//! a crash and restart (the window is rebuilt from the log, and the time
//! the node was down does not count).

use serde_json::json;

use crate::support::TestNode;

#[test]
fn a_repeated_msg_id_is_stored_once_even_across_restarts() {
    let mut node = TestNode::start();
    node.create_stream("d", json!({"subjects": ["d/#"], "partitions": 3}));
    let first = node.publish(
        "d/x",
        b"payment-1",
        &[("sluice-msg-id", "pay-1"), ("sluice-key", "acct-9")],
    );
    assert_eq!(first["duplicate"], false);
    let again = node.publish(
        "d/x",
        b"payment-1",
        &[("sluice-msg-id", "pay-1"), ("sluice-key", "acct-9")],
    );
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["appends"][0]["offset"], first["appends"][0]["offset"]);
    assert_eq!(
        again["appends"][0]["partition"],
        first["appends"][0]["partition"]
    );

    node.kill9();
    node.restart();
    let after = node.publish(
        "d/x",
        b"payment-1",
        &[("sluice-msg-id", "pay-1"), ("sluice-key", "acct-9")],
    );
    assert_eq!(
        after["duplicate"], true,
        "the window survives a kill -9: {after}"
    );
    let other = node.publish(
        "d/x",
        b"payment-2",
        &[("sluice-msg-id", "pay-2"), ("sluice-key", "acct-9")],
    );
    assert_eq!(other["duplicate"], false);

    let total: usize = (0..3).map(|p| node.read_all("d", p, 0).len()).sum();
    assert_eq!(total, 2, "two distinct ids, two stored messages");
    let (_, v) = node.get("/v1/streams/d");
    assert_eq!(v["duplicates"], 1, "duplicates counted since this start");
}

#[test]
fn ids_expire_with_the_window() {
    let node = TestNode::start();
    node.create_stream("d", json!({"subjects": ["d/#"], "dedup_window": "300ms"}));
    node.publish("d/x", b"1", &[("sluice-msg-id", "once")]);
    std::thread::sleep(std::time::Duration::from_millis(600));
    let again = node.publish("d/x", b"1", &[("sluice-msg-id", "once")]);
    assert_eq!(again["duplicate"], false);
    assert_eq!(again["appends"][0]["offset"], 1);
}

/// The window counts the time the node is up, not the time it was down: a
/// producer that retries after an outage longer than the window (or a
/// pipeline re-running its uncommitted batch) is still recognised, and the
/// window then runs on from the restart.
#[test]
fn downtime_does_not_count_against_the_window() {
    let mut node = TestNode::start();
    node.create_stream("d", json!({"subjects": ["d/#"], "dedup_window": "2s"}));
    let first = node.publish("d/x", b"1", &[("sluice-msg-id", "retry-me")]);
    assert_eq!(first["duplicate"], false);
    node.kill9();
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    node.restart();
    let again = node.publish("d/x", b"1", &[("sluice-msg-id", "retry-me")]);
    assert_eq!(
        again["duplicate"], true,
        "an outage longer than the window does not expire ids: {again}"
    );
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    let later = node.publish("d/x", b"1", &[("sluice-msg-id", "retry-me")]);
    assert_eq!(
        later["duplicate"], false,
        "a window of uptime later the id is forgotten: {later}"
    );
    assert_eq!(node.read_all("d", 0, 0).len(), 2);
}

/// ...while the time it was up, even idle, does count: an id that expired
/// before a crash stays expired after it.
#[test]
fn uptime_before_a_crash_counts_against_the_window() {
    let mut node = TestNode::start();
    node.create_stream("d", json!({"subjects": ["d/#"], "dedup_window": "2s"}));
    node.publish("d/x", b"1", &[("sluice-msg-id", "expired")]);
    std::thread::sleep(std::time::Duration::from_millis(3_500));
    node.kill9();
    node.restart();
    let again = node.publish("d/x", b"1", &[("sluice-msg-id", "expired")]);
    assert_eq!(
        again["duplicate"], false,
        "the id expired while the node was up: {again}"
    );
    assert_eq!(node.read_all("d", 0, 0).len(), 2);
}

#[test]
fn concurrent_duplicates_agree_on_one_offset() {
    let node = TestNode::start();
    node.create_stream("d", json!({"subjects": ["d/#"]}));
    let url = node.url.clone();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent = crate::support::agent();
                let r = agent
                    .post(format!("{url}/v1/topics/d/x"))
                    .header("sluice-msg-id", "same")
                    .send("v");
                crate::support::into_json(r).1
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let offsets: std::collections::HashSet<u64> = results
        .iter()
        .map(|r| r["appends"][0]["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets.len(), 1, "{results:?}");
    assert_eq!(
        results.iter().filter(|r| r["duplicate"] == false).count(),
        1
    );
    assert_eq!(node.read_all("d", 0, 0).len(), 1);
}
