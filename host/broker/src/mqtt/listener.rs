//! The MQTT listener: accepts TCP connections under a connection limit and
//! runs one [`super::task::Task`] per connection; also publishes `$SYS/`
//! statistics and expires offline sessions.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_core::{Message, TopicName};
use sluice_mqtt::QoS;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::node::Node;

/// Listener-wide counters, for `$SYS/` and `/metrics`.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub publishes_in: AtomicU64,
}

/// Accepts MQTT connections until `stopped` flips.
pub async fn serve(node: Arc<Node>, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
    let stats = node.mqtt_stats.clone();
    let permits = Arc::new(Semaphore::new(node.options.mqtt.connections_max));
    let started = Instant::now();
    tokio::spawn(housekeeping(node.clone(), started, stopped.clone()));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = stopped.changed() => break,
        };
        let socket = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "mqtt accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let _ = socket.set_nodelay(true);
        let task = super::task::Task::new(node.clone(), stats.clone(), socket);
        tokio::spawn(async move {
            task.run().await;
            drop(permit);
        });
    }
    node.router.shutdown_all();
}

/// `$SYS/` statistics (retained, like Mosquitto's) and session expiry.
async fn housekeeping(node: Arc<Node>, started: Instant, mut stopped: watch::Receiver<bool>) {
    let every = node.options.mqtt.sys_interval_ms;
    let mut interval =
        tokio::time::interval(Duration::from_millis(if every == 0 { 1000 } else { every }));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped.changed() => return,
        }
        node.router.expire_sessions(Instant::now());
        if every == 0 {
            continue;
        }
        let s = &node.mqtt_stats;
        let r = &node.router.stats;
        let values: [(&str, u64); 9] = [
            ("$SYS/broker/uptime", started.elapsed().as_secs()),
            (
                "$SYS/broker/clients/connected",
                node.router.connected_clients() as u64,
            ),
            ("$SYS/broker/clients/total", node.router.sessions() as u64),
            (
                "$SYS/broker/connections/accepted",
                s.connections_accepted.load(Relaxed),
            ),
            (
                "$SYS/broker/messages/received",
                s.publishes_in.load(Relaxed),
            ),
            ("$SYS/broker/messages/sent", r.deliveries.load(Relaxed)),
            (
                "$SYS/broker/messages/dropped",
                r.dropped_queue_full.load(Relaxed),
            ),
            ("$SYS/broker/bytes/received", s.bytes_in.load(Relaxed)),
            ("$SYS/broker/bytes/sent", s.bytes_out.load(Relaxed)),
        ];
        for (topic, value) in values {
            let msg = Message {
                topic: TopicName::new(topic).expect("literal topic"),
                key: None,
                headers: Vec::new(),
                content_type: None,
                msg_id: None,
                payload: Bytes::from(value.to_string()),
                timestamp_ms: crate::stream::now_ms(),
                mqtt: Default::default(),
            };
            node.router.retain(&msg, QoS::AtMostOnce);
            node.router.route(&msg, QoS::AtMostOnce, true, None);
        }
    }
}
