//! The codec's two error types. `DecodeError` is what a peer did wrong, and
//! each variant maps to the reason code the broker answers with before it
//! closes the connection; `EncodeError` is a value that cannot be put on the
//! wire, which is our own caller's mistake or a peer's size limit.
//!
//! "Not enough bytes yet" is not an error: `decode` returns `Ok(None)`.

use crate::{PacketType, QoS, ReasonCode, Version};

/// Why bytes from a peer are not a valid packet. After any of these the
/// stream cannot be resynchronised, so the connection must end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// `bytes` may be a lower bound: the fixed header alone proved it.
    #[error("packet of at least {bytes} bytes exceeds packet_bytes_max {max}")]
    PacketTooLarge { bytes: usize, max: usize },
    #[error("remaining length is longer than 4 bytes or not minimally encoded")]
    MalformedRemainingLength,
    /// Type 0, or 15 (AUTH) on a 3.1.1 connection.
    #[error("reserved packet type {0}")]
    ReservedPacketType(u8),
    #[error("{packet:?} with invalid fixed-header flags {flags:#06b}")]
    InvalidHeaderFlags { packet: PacketType, flags: u8 },
    #[error("{packet:?} with invalid QoS {qos}")]
    InvalidQoS { packet: PacketType, qos: u8 },
    #[error("{packet:?} ends before its fields do")]
    UnexpectedEnd { packet: PacketType },
    #[error("{packet:?} has {bytes} bytes after its last field")]
    TrailingBytes { packet: PacketType, bytes: usize },
    #[error("{packet:?} has a variable byte integer longer than 4 bytes or not minimally encoded")]
    MalformedVarInt { packet: PacketType },
    #[error("{packet:?} has a string that is not valid UTF-8")]
    InvalidUtf8 { packet: PacketType },
    #[error("{packet:?} has a string containing U+0000")]
    NullCharacter { packet: PacketType },
    #[error("{packet:?} has packet identifier 0")]
    ZeroPacketId { packet: PacketType },
    /// Includes level 3 (MQTT 3.1, "MQIsdp"), which Sluice does not speak.
    /// The session answers a level below 5 with a 3.1.1 CONNACK (return code
    /// 1) and anything else with a v5 one (0x84).
    #[error("unsupported protocol level {level}")]
    UnsupportedProtocolLevel { level: u8 },
    #[error("protocol name {name:?} is not \"MQTT\"")]
    InvalidProtocolName { name: String },
    /// The reserved bit is set, or the will QoS/retain bits contradict the
    /// will flag, or will QoS is 3.
    #[error("invalid CONNECT flags {flags:#010b}")]
    InvalidConnectFlags { flags: u8 },
    #[error("CONNECT has a password but no user name, which 3.1.1 forbids")]
    PasswordWithoutUsername,
    #[error("invalid CONNACK acknowledge flags {flags:#010b}")]
    InvalidConnAckFlags { flags: u8 },
    #[error("{packet:?} carries reason code {code:#04x}, which it may not")]
    InvalidReasonCode { packet: PacketType, code: u8 },
    /// Reserved bits set (bits 2-7 in 3.1.1, bits 6-7 in v5).
    #[error("invalid subscription options {options:#010b}")]
    InvalidSubscriptionOptions { options: u8 },
    #[error("retain handling 3 is reserved")]
    InvalidRetainHandling,
    /// SUBSCRIBE, UNSUBSCRIBE, SUBACK or v5 UNSUBACK with nothing in it.
    #[error("{packet:?} has an empty payload")]
    EmptyPayload { packet: PacketType },
    /// An identifier the spec does not define, or one it does not allow in
    /// this packet; both are malformed (v5 §2.2.2.2).
    #[error("property {id:#04x} is not allowed in {packet:?}")]
    PropertyNotAllowed { packet: PacketType, id: u32 },
    #[error("property {id:#04x} appears more than once in {packet:?}")]
    DuplicateProperty { packet: PacketType, id: u8 },
    /// A zero where zero is forbidden, or a 0/1 byte that is neither.
    #[error("property {id:#04x} in {packet:?} has invalid value {value}")]
    InvalidPropertyValue {
        packet: PacketType,
        id: u8,
        value: u32,
    },
    #[error("{packet:?} has authentication data but no authentication method")]
    AuthDataWithoutMethod { packet: PacketType },
}

impl DecodeError {
    /// The v5 reason code to send (in CONNACK before the connection is
    /// accepted, in DISCONNECT after) before closing the connection.
    pub fn reason_code(&self) -> ReasonCode {
        use DecodeError::*;
        match self {
            PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            UnsupportedProtocolLevel { .. } | InvalidProtocolName { .. } => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            // The packet parsed, but says something the protocol forbids.
            ZeroPacketId { .. }
            | InvalidReasonCode { .. }
            | InvalidRetainHandling
            | EmptyPayload { .. }
            | DuplicateProperty { .. }
            | InvalidPropertyValue { .. }
            | AuthDataWithoutMethod { .. } => ReasonCode::PROTOCOL_ERROR,
            // The bytes do not follow the packet's grammar.
            MalformedRemainingLength
            | ReservedPacketType(_)
            | InvalidHeaderFlags { .. }
            | InvalidQoS { .. }
            | UnexpectedEnd { .. }
            | TrailingBytes { .. }
            | MalformedVarInt { .. }
            | InvalidUtf8 { .. }
            | NullCharacter { .. }
            | InvalidConnectFlags { .. }
            | PasswordWithoutUsername
            | InvalidConnAckFlags { .. }
            | InvalidSubscriptionOptions { .. }
            | PropertyNotAllowed { .. } => ReasonCode::MALFORMED_PACKET,
        }
    }
}

/// Why a packet cannot be encoded. `encode` leaves its output buffer as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Over the caller's `packet_bytes_max` (the peer's Maximum Packet Size)
    /// or over what MQTT can express at all.
    #[error("packet of {bytes} bytes exceeds the limit of {max}")]
    PacketTooLarge { bytes: usize, max: usize },
    #[error("string of {bytes} bytes exceeds 65535")]
    StringTooLong { bytes: usize },
    #[error("binary data of {bytes} bytes exceeds 65535")]
    BinaryTooLong { bytes: usize },
    #[error("string contains U+0000, which MQTT forbids")]
    NullCharacter,
    #[error("{packet:?} does not exist in {version:?}")]
    NotInVersion {
        packet: PacketType,
        version: Version,
    },
    #[error("{packet:?} cannot carry {reason:?} in {version:?}")]
    ReasonNotAllowed {
        packet: PacketType,
        reason: ReasonCode,
        version: Version,
    },
    #[error("PUBLISH at {qos:?} {has} a packet identifier", has = if *has_id { "has" } else { "lacks" })]
    PacketIdMismatch { qos: QoS, has_id: bool },
    #[error("PUBLISH at QoS 0 with DUP set")]
    DupWithQoS0,
    #[error("CONNECT has a password but no user name, which 3.1.1 forbids")]
    PasswordWithoutUsername,
    #[error("{packet:?} needs at least one entry")]
    EmptyPayload { packet: PacketType },
    #[error("property {id:#04x} in {packet:?} cannot be {value}")]
    InvalidPropertyValue {
        packet: PacketType,
        id: u8,
        value: u32,
    },
    #[error("{packet:?} has authentication data but no authentication method")]
    AuthDataWithoutMethod { packet: PacketType },
}
