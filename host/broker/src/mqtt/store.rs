//! How persistent MQTT sessions are kept in the metadata store: the session
//! record (expiry and subscriptions) and every QoS 1/2 message held for it
//! until its client acknowledges. A publisher's PUBACK waits for these
//! writes, so a message acknowledged to its publisher survives `kill -9`
//! for every persistent subscriber too.

use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use sluice_core::{Message, MqttProperties, TopicName};
use sluice_mqtt::{Delivery, PublishProperties, QoS};

use super::router::SubOptions;

/// A persistent session as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredSession {
    pub expiry_s: u32,
    /// When its client went away (wall ms); `None` while connected.
    pub disconnected_ms: Option<i64>,
    pub subscriptions: Vec<StoredSub>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredSub {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub subscription_id: Option<u32>,
    pub share_group: Option<String>,
}

impl StoredSub {
    pub fn from_options(filter: &str, o: &SubOptions) -> Self {
        Self {
            filter: filter.to_owned(),
            qos: o.qos as u8,
            no_local: o.no_local,
            retain_as_published: o.retain_as_published,
            subscription_id: o.subscription_id,
            share_group: o.share_group.clone(),
        }
    }

    pub fn options(&self) -> SubOptions {
        SubOptions {
            qos: QoS::from_u8(self.qos).unwrap_or(QoS::AtMostOnce),
            no_local: self.no_local,
            retain_as_published: self.retain_as_published,
            subscription_id: self.subscription_id,
            share_group: self.share_group.clone(),
        }
    }
}

const NO_EXPIRY: i64 = i64::MIN;

/// Encodes a held message: `qos u8 | retain u8 | expiry wall ms i64 LE |
/// subscription id count u8 | ids u32 LE… | envelope`.
pub fn encode_delivery(d: &Delivery, now: Instant, now_ms: i64) -> Vec<u8> {
    let message = Message {
        topic: TopicName::new(&d.topic)
            .unwrap_or_else(|_| TopicName::new("invalid").expect("literal")),
        key: None,
        headers: d.properties.user_properties.clone(),
        content_type: d.properties.content_type.clone(),
        msg_id: None,
        payload: d.payload.clone(),
        timestamp_ms: 0,
        mqtt: MqttProperties {
            payload_utf8: d.properties.payload_format_indicator.unwrap_or(false),
            expiry_s: None,
            response_topic: d.properties.response_topic.clone(),
            correlation_data: d.properties.correlation_data.clone(),
        },
    };
    let envelope = message.encode_value();
    let mut out = BytesMut::with_capacity(16 + envelope.len());
    out.put_u8(d.qos as u8);
    out.put_u8(u8::from(d.retain));
    let expiry = d.expires_at.map_or(NO_EXPIRY, |at| {
        now_ms + at.saturating_duration_since(now).as_millis() as i64
    });
    out.put_i64_le(expiry);
    let ids = &d.properties.subscription_identifiers
        [..d.properties.subscription_identifiers.len().min(255)];
    out.put_u8(ids.len() as u8);
    for id in ids {
        out.put_u32_le(*id);
    }
    out.put_slice(&envelope);
    out.to_vec()
}

/// Decodes what [`encode_delivery`] wrote; `None` for anything unreadable.
pub fn decode_delivery(value: &[u8], store_id: u64, now: Instant, now_ms: i64) -> Option<Delivery> {
    let mut b = value;
    if b.remaining() < 11 {
        return None;
    }
    let qos = QoS::from_u8(b.get_u8())?;
    let retain = b.get_u8() != 0;
    let expiry = b.get_i64_le();
    let count = usize::from(b.get_u8());
    if b.remaining() < count * 4 {
        return None;
    }
    let ids = (0..count).map(|_| b.get_u32_le()).collect();
    let m = Message::decode(None, 0, &Bytes::copy_from_slice(b)).ok()?;
    let expires_at =
        (expiry != NO_EXPIRY).then(|| now + Duration::from_millis((expiry - now_ms).max(0) as u64));
    Some(Delivery {
        topic: m.topic.as_str().to_owned(),
        payload: m.payload,
        qos,
        retain,
        properties: PublishProperties {
            payload_format_indicator: m.mqtt.payload_utf8.then_some(true),
            message_expiry_interval_s: None,
            topic_alias: None,
            response_topic: m.mqtt.response_topic,
            correlation_data: m.mqtt.correlation_data,
            user_properties: m.headers,
            subscription_identifiers: ids,
            content_type: m.content_type,
        },
        expires_at,
        store_id: Some(store_id),
        maybe_sent: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_messages_round_trip() {
        let now = Instant::now();
        let d = Delivery {
            topic: "a/b".into(),
            payload: Bytes::from_static(b"p"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: PublishProperties {
                user_properties: vec![("k".into(), "v".into())],
                subscription_identifiers: vec![7, 9],
                content_type: Some("text/plain".into()),
                correlation_data: Some(Bytes::from_static(b"c")),
                response_topic: Some("r".into()),
                payload_format_indicator: Some(true),
                ..Default::default()
            },
            expires_at: None,
            store_id: None,
            maybe_sent: false,
        };
        let v = encode_delivery(&d, now, 1_000);
        let back = decode_delivery(&v, 5, now, 1_000).unwrap();
        assert_eq!(
            back,
            Delivery {
                store_id: Some(5),
                maybe_sent: true,
                ..d
            }
        );
        assert!(decode_delivery(&v[..6], 5, now, 0).is_none());
    }
}
