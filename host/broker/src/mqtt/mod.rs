//! MQTT in the broker: the listener, one task per connection driving the
//! sans-IO [`sluice_mqtt::Connection`], and the [`Router`] of live sessions,
//! subscriptions and retained messages. A message published over MQTT is
//! captured by matching streams like any other; a message published over
//! HTTP reaches MQTT subscribers.

mod listener;
pub mod namespace;
mod router;
pub mod store;
mod task;

use bytes::{BufMut, Bytes, BytesMut};
use sluice_core::{Message, TopicName};
use sluice_mqtt::QoS;

pub use listener::{ListenerStats, Transport, serve, tls_acceptor};
pub use router::{
    Congested, Pacing, RetainRoom, Retained, Router, RouterStats, SubOptions, ToConnection,
};

/// Encodes a retained message for the metadata store:
/// `qos u8 | timestamp i64 LE | key len u32 LE (u32::MAX = none) | key | envelope`.
pub fn retained_value(msg: &Message, qos: QoS) -> Vec<u8> {
    let envelope = msg.encode_value();
    let mut out = BytesMut::with_capacity(13 + envelope.len());
    out.put_u8(qos as u8);
    out.put_i64_le(msg.timestamp_ms);
    match &msg.key {
        Some(k) => {
            out.put_u32_le(k.len() as u32);
            out.put_slice(k);
        }
        None => out.put_u32_le(u32::MAX),
    }
    out.put_slice(&envelope);
    out.to_vec()
}

/// Decodes what [`retained_value`] wrote; `None` (and a log line) for anything unreadable.
pub fn retained_from_value(key: &str, value: &[u8]) -> Option<Retained> {
    let parse = || -> Option<Retained> {
        let qos = QoS::from_u8(*value.first()?)?;
        let ts = i64::from_le_bytes(value.get(1..9)?.try_into().ok()?);
        let klen = u32::from_le_bytes(value.get(9..13)?.try_into().ok()?);
        let (msg_key, rest) = if klen == u32::MAX {
            (None, value.get(13..)?)
        } else {
            let end = 13 + klen as usize;
            (
                Some(Bytes::copy_from_slice(value.get(13..end)?)),
                value.get(end..)?,
            )
        };
        let message = Message::decode(msg_key, ts, &Bytes::copy_from_slice(rest)).ok()?;
        Some(Retained { message, qos })
    };
    let r = parse();
    if r.is_none() {
        tracing::error!(key, "unreadable retained message in metadata; ignored");
    }
    r
}

/// A topic name from an MQTT client, checked by the core rules.
pub(crate) fn topic(name: &str) -> Option<TopicName> {
    TopicName::new(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retained_values_round_trip() {
        let msg = Message {
            topic: TopicName::new("a/b").unwrap(),
            key: Some(Bytes::from_static(b"k")),
            headers: vec![("h".into(), "v".into())],
            content_type: Some("text/plain".into()),
            msg_id: None,
            payload: Bytes::from_static(b"payload"),
            timestamp_ms: 1234,
            mqtt: Default::default(),
        };
        let v = retained_value(&msg, QoS::ExactlyOnce);
        let r = retained_from_value("default/a/b", &v).unwrap();
        assert_eq!(r.message, msg);
        assert_eq!(r.qos, QoS::ExactlyOnce);
        assert!(retained_from_value("x", &v[..5]).is_none());
    }
}
