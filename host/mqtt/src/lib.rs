//! `sluice-mqtt` is Sluice's MQTT codec: every control packet of MQTT 3.1.1
//! and 5.0, decoded from and encoded to `BytesMut`, in both directions. It is
//! sans-IO (no sockets, no tokio, no clock), so the broker's connection task
//! only moves bytes and this crate can be tested and fuzzed on its own.
//!
//! The codec checks what the wire format and the spec say about single
//! packets: framing, sizes, flags, UTF-8, packet ids, property rules, reason
//! codes. What depends on the connection's history (the first packet must be
//! CONNECT, topic aliases, in-flight windows, wildcard rules for topics and
//! filters) belongs to the session state machine above it.
//!
//! ```
//! use sluice_mqtt::{BytesMut, Packet, Version, decode, encode};
//!
//! let mut buf = BytesMut::new();
//! encode(&Packet::PingReq, Version::V5, 1024, &mut buf).unwrap();
//! assert_eq!(&buf[..], [0xC0, 0x00]);
//! assert_eq!(decode(&mut buf, Version::V5, 1024), Ok(Some(Packet::PingReq)));
//! assert_eq!(decode(&mut buf, Version::V5, 1024), Ok(None));
//! ```

pub mod connection;
mod decode;
mod encode;
mod error;
pub mod framing;
mod packet;
pub mod properties;
mod reason;
mod wire;

#[cfg(test)]
mod tests;

/// Re-exported so callers (and the fuzz target) use the same `bytes` as the
/// codec without naming it as a dependency of their own.
pub use bytes::{Bytes, BytesMut};

pub use connection::{
    Accept, Backpressure, CloseReason, Connection, ConnectionConfig, ConnectionStats, Delivery,
    Event, InboundPublish, Outgoing, SessionState,
};
pub use decode::decode;
pub use encode::encode;
pub use error::{DecodeError, EncodeError};
pub use framing::{Frame, PACKET_BYTES_MAX, PacketType, REMAINING_LENGTH_MAX};
pub use packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, PacketId, PubAck, PubComp, PubRec, PubRel, Publish,
    QoS, RetainHandling, SubAck, Subscribe, Subscription, UnsubAck, Unsubscribe, Version, Will,
};
pub use properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PublishProperties, SubscribeProperties, UnsubscribeProperties, UserProperties, WillProperties,
};
pub use reason::{ConnectReturnCode, ReasonCode, SUBACK_FAILURE_V3};
pub use wire::STRING_BYTES_MAX;
