//! The message envelope: what Sluice stores in the value of each log record
//! besides the payload (topic, headers, content type, idempotency id). The log
//! itself stores opaque bytes; this module is the one place that knows how a
//! message is laid out inside them, so the format can evolve with a version
//! byte rather than by changing the log.
//!
//! Layout (version 1), all lengths LEB128 varints:
//!
//! ```text
//! u8 version = 1
//! u8 flags      bit0: content type present, bit1: message id present
//! varint len, topic bytes
//! varint header count, then per header: varint len, name, varint len, value
//! [varint len, content type]   if bit0
//! [varint len, message id]     if bit1
//! [varint len, response topic] if bit2   (MQTT 5 properties from here on)
//! [varint len, correlation]    if bit3
//! [varint expiry seconds]      if bit4
//!                              bit5: payload is UTF-8 (payload format indicator)
//! payload: every remaining byte
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::topic::{TopicError, TopicName};

const VERSION: u8 = 1;
const FLAG_CONTENT_TYPE: u8 = 0b01;
const FLAG_MSG_ID: u8 = 0b10;
const FLAG_RESPONSE_TOPIC: u8 = 0b100;
const FLAG_CORRELATION: u8 = 0b1000;
const FLAG_EXPIRY: u8 = 0b1_0000;
const FLAG_PAYLOAD_UTF8: u8 = 0b10_0000;

/// Headers per message; a bound so a decoder never allocates on a lying count.
pub const HEADERS_MAX: usize = 256;

/// One message as the broker sees it. Timestamp and key live in the log
/// record itself (the log indexes time and partitions by key); everything else
/// is in the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: TopicName,
    pub key: Option<Bytes>,
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    /// The producer's idempotency id (`Sluice-Msg-Id`); duplicates within a
    /// stream's window are acknowledged without a second append.
    pub msg_id: Option<String>,
    pub payload: Bytes,
    pub timestamp_ms: i64,
    /// The MQTT 5 properties that travel with a message end to end.
    pub mqtt: MqttProperties,
}

/// MQTT 5 publish properties kept with the message (user properties are
/// [`Message::headers`], content type is [`Message::content_type`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MqttProperties {
    /// Payload format indicator: the payload is UTF-8 text.
    pub payload_utf8: bool,
    /// Message expiry interval in seconds, counted from the record's timestamp.
    pub expiry_s: Option<u32>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope is truncated")]
    Truncated,
    #[error("unknown envelope version {0}")]
    Version(u8),
    #[error("envelope has {0} headers; the limit is {HEADERS_MAX}")]
    TooManyHeaders(u64),
    #[error("envelope field is not UTF-8")]
    Utf8,
    #[error("envelope topic is invalid: {0}")]
    Topic(#[from] TopicError),
}

impl Message {
    /// Encodes everything but key and timestamp into a record value.
    pub fn encode_value(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(16 + self.topic.as_str().len() + self.payload.len());
        out.put_u8(VERSION);
        let mut flags = 0;
        if self.content_type.is_some() {
            flags |= FLAG_CONTENT_TYPE;
        }
        if self.msg_id.is_some() {
            flags |= FLAG_MSG_ID;
        }
        let m = &self.mqtt;
        if m.response_topic.is_some() {
            flags |= FLAG_RESPONSE_TOPIC;
        }
        if m.correlation_data.is_some() {
            flags |= FLAG_CORRELATION;
        }
        if m.expiry_s.is_some() {
            flags |= FLAG_EXPIRY;
        }
        if m.payload_utf8 {
            flags |= FLAG_PAYLOAD_UTF8;
        }
        out.put_u8(flags);
        put_str(&mut out, self.topic.as_str());
        put_varint(&mut out, self.headers.len() as u64);
        for (name, value) in &self.headers {
            put_str(&mut out, name);
            put_str(&mut out, value);
        }
        if let Some(ct) = &self.content_type {
            put_str(&mut out, ct);
        }
        if let Some(id) = &self.msg_id {
            put_str(&mut out, id);
        }
        if let Some(t) = &m.response_topic {
            put_str(&mut out, t);
        }
        if let Some(c) = &m.correlation_data {
            put_varint(&mut out, c.len() as u64);
            out.put_slice(c);
        }
        if let Some(e) = m.expiry_s {
            put_varint(&mut out, u64::from(e));
        }
        out.put_slice(&self.payload);
        out.freeze()
    }

    /// Rebuilds a message from a record's parts. Never panics on bad input.
    pub fn decode(
        key: Option<Bytes>,
        timestamp_ms: i64,
        value: &Bytes,
    ) -> Result<Self, EnvelopeError> {
        let mut r = Reader { buf: value, pos: 0 };
        let version = r.u8()?;
        if version != VERSION {
            return Err(EnvelopeError::Version(version));
        }
        let flags = r.u8()?;
        let topic = TopicName::new(r.str()?)?;
        let count = r.varint()?;
        if count > HEADERS_MAX as u64 {
            return Err(EnvelopeError::TooManyHeaders(count));
        }
        let mut headers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let name = r.str()?.to_owned();
            let value = r.str()?.to_owned();
            headers.push((name, value));
        }
        let content_type = if flags & FLAG_CONTENT_TYPE != 0 {
            Some(r.str()?.to_owned())
        } else {
            None
        };
        let msg_id = if flags & FLAG_MSG_ID != 0 {
            Some(r.str()?.to_owned())
        } else {
            None
        };
        let mut mqtt = MqttProperties {
            payload_utf8: flags & FLAG_PAYLOAD_UTF8 != 0,
            ..MqttProperties::default()
        };
        if flags & FLAG_RESPONSE_TOPIC != 0 {
            mqtt.response_topic = Some(r.str()?.to_owned());
        }
        if flags & FLAG_CORRELATION != 0 {
            let len = r.varint()?;
            mqtt.correlation_data = Some(value.slice(r.take(len)?));
        }
        if flags & FLAG_EXPIRY != 0 {
            let e = r.varint()?;
            mqtt.expiry_s = Some(u32::try_from(e).map_err(|_| EnvelopeError::Truncated)?);
        }
        let payload = value.slice(r.pos..);
        Ok(Self {
            topic,
            key,
            headers,
            content_type,
            msg_id,
            payload,
            timestamp_ms,
            mqtt,
        })
    }

    /// Reads only the idempotency id, for rebuilding the de-duplication window
    /// without decoding payloads.
    pub fn peek_msg_id(value: &[u8]) -> Option<String> {
        let mut r = Reader { buf: value, pos: 0 };
        if r.u8().ok()? != VERSION {
            return None;
        }
        let flags = r.u8().ok()?;
        if flags & FLAG_MSG_ID == 0 {
            return None;
        }
        r.str().ok()?;
        for _ in 0..r.varint().ok()?.min(HEADERS_MAX as u64) {
            r.str().ok()?;
            r.str().ok()?;
        }
        if flags & FLAG_CONTENT_TYPE != 0 {
            r.str().ok()?;
        }
        r.str().ok().map(str::to_owned)
    }
}

fn put_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn put_str(out: &mut BytesMut, s: &str) {
    put_varint(out, s.len() as u64);
    out.put_slice(s.as_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, EnvelopeError> {
        let b = *self.buf.get(self.pos).ok_or(EnvelopeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, EnvelopeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(EnvelopeError::Truncated)
    }

    /// Claims the next `len` bytes, returning their range.
    fn take(&mut self, len: u64) -> Result<std::ops::Range<usize>, EnvelopeError> {
        let remaining = (self.buf.len() - self.pos) as u64;
        if len > remaining {
            return Err(EnvelopeError::Truncated);
        }
        let range = self.pos..self.pos + len as usize;
        self.pos = range.end;
        Ok(range)
    }

    fn str(&mut self) -> Result<&'a str, EnvelopeError> {
        let len = self.varint()?;
        let remaining = (self.buf.len() - self.pos) as u64;
        if len > remaining {
            return Err(EnvelopeError::Truncated);
        }
        let bytes = &self.buf[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        std::str::from_utf8(bytes).map_err(|_| EnvelopeError::Utf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(payload: &[u8]) -> Message {
        Message {
            topic: TopicName::new("sensors/a/temp").unwrap(),
            key: Some(Bytes::from_static(b"k")),
            headers: vec![("origin".into(), "test".into())],
            content_type: Some("application/json".into()),
            msg_id: Some("id-1".into()),
            payload: Bytes::copy_from_slice(payload),
            timestamp_ms: 42,
            mqtt: MqttProperties {
                payload_utf8: true,
                expiry_s: Some(60),
                response_topic: Some("replies/1".into()),
                correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            },
        }
    }

    #[test]
    fn round_trips_and_peeks_the_id() {
        let m = message(b"{\"t\":21.5}");
        let v = m.encode_value();
        assert_eq!(Message::decode(m.key.clone(), 42, &v).unwrap(), m);
        assert_eq!(Message::peek_msg_id(&v).as_deref(), Some("id-1"));
    }

    proptest! {
        #[test]
        fn round_trip_any(topic in "[a-z/]{1,20}", payload in proptest::collection::vec(any::<u8>(), 0..200),
                          headers in proptest::collection::vec(("[a-z]{1,8}", ".{0,8}"), 0..5),
                          ct in proptest::option::of("[a-z/]{1,10}"), id in proptest::option::of(".{0,10}"),
                          utf8 in any::<bool>(), expiry in proptest::option::of(any::<u32>()),
                          response in proptest::option::of("[a-z/]{1,10}"),
                          correlation in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16))) {
            let mqtt = MqttProperties { payload_utf8: utf8, expiry_s: expiry, response_topic: response,
                                        correlation_data: correlation.map(Bytes::from) };
            let m = Message { topic: TopicName::new(&topic).unwrap(), key: None, headers, content_type: ct,
                              msg_id: id, payload: Bytes::from(payload), timestamp_ms: 7, mqtt };
            let v = m.encode_value();
            prop_assert_eq!(Message::peek_msg_id(&v), m.msg_id.clone());
            prop_assert_eq!(Message::decode(None, 7, &v).unwrap(), m);
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Message::decode(None, 0, &Bytes::from(bytes.clone()));
            let _ = Message::peek_msg_id(&bytes);
        }
    }
}
