//! Retention deletes whole old segments, by age and by size, and readers
//! then start at the new first offset.

use std::time::{Duration, Instant};

use crate::support::TestNode;

fn segment_files(node: &TestNode, stream: &str) -> usize {
    std::fs::read_dir(node.data_dir().join(format!("streams/default/{stream}/0")))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".log")
        })
        .count()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn retention_by_bytes_deletes_the_oldest_segments() {
    let node = TestNode::start_with_config(Some(
        r#"retention_check = "100ms"
[[streams]]
name = "r"
subjects = ["r/#"]
segment_bytes = "4KiB"
retention = { max_bytes = "16KiB" }
"#,
    ));
    let payload = vec![b'x'; 1000];
    for _ in 0..100 {
        node.publish("r/x", &payload, &[]);
    }
    // Retention runs every 100 ms, also while the publishes above land: the
    // pass after the last publish is the one that brings the log within
    // bounds, so wait for its result (bytes and files) rather than for the
    // first pass that happens to get close.
    wait_for(
        "retention to cut the log to about 16 KiB in at most 6 segments",
        || {
            let (_, v) = node.get("/v1/streams/r");
            v["partitions"][0]["bytes"].as_u64().unwrap() <= 16 * 1024 + 4096
                && segment_files(&node, "r") <= 6
        },
    );
    let (_, v) = node.get("/v1/streams/r");
    let start = v["partitions"][0]["start_offset"].as_u64().unwrap();
    assert!(start > 50, "old segments gone, start offset {start}");
    assert_eq!(v["partitions"][0]["end_offset"], 100);
    assert!(
        segment_files(&node, "r") <= 6,
        "{} segment files left",
        segment_files(&node, "r")
    );
    // Reading from 0 now starts at the first retained message, offsets still dense.
    let all = node.read_all("r", 0, 0);
    assert_eq!(all[0]["offset"].as_u64().unwrap(), start);
    assert_eq!(all.len() as u64, 100 - start);
    for (i, m) in all.iter().enumerate() {
        assert_eq!(m["offset"].as_u64().unwrap(), start + i as u64);
    }
}

#[test]
fn retention_by_age_deletes_expired_segments_and_survives_a_restart() {
    let mut node = TestNode::start_with_config(Some(
        r#"retention_check = "100ms"
[[streams]]
name = "a"
subjects = ["a/#"]
segment_age = "200ms"
retention = { max_age = "500ms" }
"#,
    ));
    for i in 0..10 {
        node.publish("a/x", format!("old-{i}").as_bytes(), &[]);
    }
    wait_for("the old messages to expire", || {
        let (_, v) = node.get("/v1/streams/a");
        v["partitions"][0]["start_offset"] == 10
    });
    node.publish("a/x", b"new", &[]);
    let all = node.read_all("a", 0, 0);
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0]["offset"], 10,
        "offsets are never reused after deletion"
    );

    node.restart();
    let (_, v) = node.get("/v1/streams/a");
    assert!(v["partitions"][0]["start_offset"].as_u64().unwrap() >= 10);
    assert_eq!(v["partitions"][0]["end_offset"], 11);
}
