//! The packets as Rust values: one struct per control packet, shared by both
//! protocol versions.
//!
//! One type for 3.1.1 and 5.0 keeps the broker version-agnostic: v5-only
//! fields (properties, reason codes, subscription options) sit at their
//! defaults on a 3.1.1 connection. Encoding for 3.1.1 leaves v5-only metadata
//! out, since 3.1.1 has nowhere to put it, but refuses a reason code 3.1.1
//! cannot express, since dropping it would turn a failure into a success.
//! Invalid states that the types do not prevent (a QoS 0 PUBLISH with a packet
//! id, an empty SUBSCRIBE) are refused by `encode`, never written.

use std::num::NonZeroU16;

use bytes::Bytes;

use crate::properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PublishProperties, SubscribeProperties, UnsubscribeProperties, WillProperties,
};
use crate::{PacketType, ReasonCode};

/// The protocol level of a connection, fixed by its CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// Protocol level 4.
    V3_1_1,
    /// Protocol level 5.
    V5,
}

impl Version {
    /// The protocol level byte in CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Version::V3_1_1 => 4,
            Version::V5 => 5,
        }
    }
}

/// Packet identifiers are never zero ([MQTT-2.2.1-3]), so the type says so.
pub type PacketId = NonZeroU16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    pub fn from_u8(byte: u8) -> Option<QoS> {
        match byte {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// Every MQTT control packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    Connect(Connect),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(PubAck),
    PubRec(PubRec),
    PubRel(PubRel),
    PubComp(PubComp),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    /// v5 only.
    Auth(Auth),
}

impl Packet {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }
}

/// CONNECT. It is self-describing: `decode` reads it at the level it
/// announces and `encode` writes it at `version`, whatever version the
/// caller passes, because no version is known before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    pub version: Version,
    /// May be empty: the server then assigns one (or, in 3.1.1 with a
    /// persistent session, refuses; that is the session's rule).
    pub client_id: String,
    /// "Clean Session" in 3.1.1, "Clean Start" in 5.
    pub clean_start: bool,
    /// 0 turns keep-alive off.
    pub keep_alive_s: u16,
    pub username: Option<String>,
    /// Binary, not UTF-8. In 3.1.1 only with a username ([MQTT-3.1.2-22]).
    pub password: Option<Bytes>,
    pub will: Option<Will>,
    pub properties: ConnectProperties,
}

/// The message the server publishes for a client that goes away uncleanly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub properties: WillProperties,
}

/// CONNACK. `reason` is a v5 code on both versions; 3.1.1 return codes map
/// through `ConnectReturnCode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: ConnAckProperties,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// May only be set on QoS 1 and 2 ([MQTT-3.3.1-2]).
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// UTF-8 checked only; wildcards and emptiness (legal in v5 with a topic
    /// alias) are the session's to judge.
    pub topic: String,
    /// Present exactly when `qos` is not `AtMostOnce`.
    pub packet_id: Option<PacketId>,
    /// A zero-copy slice of the buffer the packet was decoded from.
    pub payload: Bytes,
    pub properties: PublishProperties,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape and differ only in the
/// reason codes allowed (see `ReasonCode::is_allowed_in`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PubAck {
    pub packet_id: PacketId,
    pub reason: ReasonCode,
    pub properties: AckProperties,
}

impl PubAck {
    /// The common case: success with no properties, which encodes in 4 bytes.
    pub fn new(packet_id: PacketId) -> PubAck {
        PubAck {
            packet_id,
            reason: ReasonCode::SUCCESS,
            properties: AckProperties::default(),
        }
    }
}

pub type PubRec = PubAck;
pub type PubRel = PubAck;
pub type PubComp = PubAck;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: PacketId,
    /// At least one ([MQTT-3.8.3-3]).
    pub subscriptions: Vec<Subscription>,
    pub properties: SubscribeProperties,
}

/// One topic filter of a SUBSCRIBE with its options; only `filter` and `qos`
/// exist in 3.1.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub filter: String,
    /// The maximum QoS the subscriber accepts.
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

impl Subscription {
    /// A filter with v5's default options (which are 3.1.1's behaviour).
    pub fn new(filter: impl Into<String>, qos: QoS) -> Subscription {
        Subscription {
            filter: filter.into(),
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }
}

/// When retained messages are sent for a new subscription (v5 §3.8.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum RetainHandling {
    #[default]
    SendAtSubscribe = 0,
    SendAtSubscribeIfNew = 1,
    DoNotSend = 2,
}

/// SUBACK: one reason per filter of the SUBSCRIBE, in order. In 3.1.1 the
/// successes are GRANTED_QOS_0/1/2 and every failure is sent as 0x80.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: PacketId,
    pub reasons: Vec<ReasonCode>,
    pub properties: AckProperties,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: PacketId,
    /// At least one ([MQTT-3.10.3-2]).
    pub filters: Vec<String>,
    pub properties: UnsubscribeProperties,
}

/// UNSUBACK: in v5 one reason per filter; in 3.1.1 none at all (`reasons`
/// is empty after decoding and ignored when encoding, since 3.1.1 treats
/// every UNSUBSCRIBE as a success).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: PacketId,
    pub reasons: Vec<ReasonCode>,
    pub properties: AckProperties,
}

/// DISCONNECT. In 3.1.1 only the client sends it, always without a reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disconnect {
    pub reason: ReasonCode,
    pub properties: DisconnectProperties,
}

impl Default for Disconnect {
    fn default() -> Disconnect {
        Disconnect {
            reason: ReasonCode::NORMAL_DISCONNECTION,
            properties: DisconnectProperties::default(),
        }
    }
}

/// AUTH (v5 only): one step of an extended authentication exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    pub reason: ReasonCode,
    pub properties: AuthProperties,
}
