//! The promise of the log: an acknowledged message is never lost, not even to
//! `kill -9`. Several clients publish; the node is killed at random moments;
//! after each restart every acknowledged message must read back
//! byte-identical at its offset, and every partition's offsets must be dense.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng as _;
use serde_json::json;

use crate::support::{TestNode, payload};

const PARTITIONS: u32 = 4;
const CLIENTS: usize = 4;
const ITERATIONS_MAX: usize = 12;
const TIME_BUDGET: Duration = Duration::from_secs(60);

/// (partition, offset) → payload of every acknowledged publish.
type Acked = Arc<Mutex<HashMap<(u32, u64), Vec<u8>>>>;

fn publisher(url: String, client: usize, iteration: usize, acked: Acked, stop: Arc<AtomicBool>) {
    let agent = crate::support::agent();
    let mut rng = rand::rng();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // Varied sizes, so batches and torn tails fall at different places.
        let pad: String = (0..rng.random_range(0..600))
            .map(|_| rng.random_range(b'a'..=b'z') as char)
            .collect();
        let body = format!("c{client}-i{iteration}-s{seq}-{pad}").into_bytes();
        let key = format!("k{}", rng.random_range(0..16));
        let Ok(resp) = agent
            .post(format!("{url}/v1/topics/crash/x"))
            .header("sluice-key", &key)
            .send(&body[..])
        else {
            return; // the node died under us: this publish was never acknowledged
        };
        let (status, v) = crate::support::into_json(Ok(resp));
        if status != 200 {
            return;
        }
        let a = &v["appends"][0];
        let at = (
            a["partition"].as_u64().unwrap() as u32,
            a["offset"].as_u64().unwrap(),
        );
        let previous = acked.lock().unwrap().insert(at, body);
        assert!(previous.is_none(), "offset {at:?} acknowledged twice");
        seq += 1;
    }
}

fn verify(node: &TestNode, acked: &Acked) -> usize {
    let acked = acked.lock().unwrap();
    let mut stored: HashMap<(u32, u64), Vec<u8>> = HashMap::new();
    for p in 0..PARTITIONS {
        let msgs = node.read_all("crash", p, 0);
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(
                m["offset"].as_u64().unwrap(),
                i as u64,
                "partition {p}: offsets must be dense"
            );
            stored.insert((p, i as u64), payload(m));
        }
    }
    for (at, body) in acked.iter() {
        let got = stored
            .get(at)
            .unwrap_or_else(|| panic!("acknowledged message at {at:?} is lost"));
        assert_eq!(got, body, "acknowledged message at {at:?} changed");
    }
    acked.len()
}

#[test]
fn acknowledged_messages_survive_kill_9_at_random_moments() {
    let mut node = TestNode::start();
    node.create_stream(
        "crash",
        json!({"subjects": ["crash/#"], "partitions": PARTITIONS}),
    );
    let acked: Acked = Arc::default();
    let started = Instant::now();
    let mut rng = rand::rng();
    let mut iterations = 0;
    while iterations < ITERATIONS_MAX && started.elapsed() < TIME_BUDGET {
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (url, acked, stop) = (node.url.clone(), acked.clone(), stop.clone());
                std::thread::spawn(move || publisher(url, c, iterations, acked, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(100..600)));
        node.kill9();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().expect("publisher thread");
        }
        node.restart();
        verify(&node, &acked);
        iterations += 1;
    }
    let total = verify(&node, &acked);
    eprintln!("crash test: {iterations} kills, {total} acknowledged messages all intact");
    assert!(
        iterations >= 3,
        "too few iterations to mean anything ({iterations})"
    );
    assert!(
        total > 100,
        "too few acknowledged publishes to mean anything ({total})"
    );
}

#[test]
fn a_clean_shutdown_exits_zero_and_keeps_everything() {
    let mut node = TestNode::start();
    node.create_stream("crash", json!({"subjects": ["crash/#"], "fsync": "never"}));
    for i in 0..50 {
        node.publish("crash/x", format!("m{i}").as_bytes(), &[]);
    }
    let status = node.stop();
    assert!(status.success(), "SIGTERM exit: {status}");
    node.restart();
    let all = node.read_all("crash", 0, 0);
    assert_eq!(all.len(), 50);
    assert_eq!(payload(&all[49]), b"m49");
}
