//! Reason codes: the one-byte outcomes MQTT 5 puts in acknowledgements and
//! DISCONNECT, and the narrower codes 3.1.1 has in CONNACK and SUBACK.
//!
//! The broker reasons in v5 codes whatever the client speaks, so `ReasonCode`
//! is the single vocabulary and the v3.1.1 codes are mappings into it. v5
//! gives one byte several names (0x00 is Success, Normal disconnection and
//! Granted QoS 0), so `ReasonCode` is a checked newtype with named constants
//! rather than an enum, and every value of it is a code the spec defines.

use std::fmt;

use crate::PacketType;

/// A v5 reason code. Construct with the named constants or `TryFrom<u8>`;
/// both guarantee the byte is one the spec defines.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReasonCode(u8);

macro_rules! reason_codes {
    ($($name:ident = $value:literal, $text:literal;)*) => {
        impl ReasonCode {
            $(#[doc = $text] pub const $name: ReasonCode = ReasonCode($value);)*
        }
        /// Every defined code once, ascending, with the spec's name.
        const KNOWN: &[(u8, &str)] = &[$(($value, $text)),*];
    };
}

reason_codes! {
    SUCCESS = 0x00, "Success";
    GRANTED_QOS_1 = 0x01, "Granted QoS 1";
    GRANTED_QOS_2 = 0x02, "Granted QoS 2";
    DISCONNECT_WITH_WILL_MESSAGE = 0x04, "Disconnect with Will Message";
    NO_MATCHING_SUBSCRIBERS = 0x10, "No matching subscribers";
    NO_SUBSCRIPTION_EXISTED = 0x11, "No subscription existed";
    CONTINUE_AUTHENTICATION = 0x18, "Continue authentication";
    RE_AUTHENTICATE = 0x19, "Re-authenticate";
    UNSPECIFIED_ERROR = 0x80, "Unspecified error";
    MALFORMED_PACKET = 0x81, "Malformed Packet";
    PROTOCOL_ERROR = 0x82, "Protocol Error";
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83, "Implementation specific error";
    UNSUPPORTED_PROTOCOL_VERSION = 0x84, "Unsupported Protocol Version";
    CLIENT_IDENTIFIER_NOT_VALID = 0x85, "Client Identifier not valid";
    BAD_USER_NAME_OR_PASSWORD = 0x86, "Bad User Name or Password";
    NOT_AUTHORIZED = 0x87, "Not authorized";
    SERVER_UNAVAILABLE = 0x88, "Server unavailable";
    SERVER_BUSY = 0x89, "Server busy";
    BANNED = 0x8A, "Banned";
    SERVER_SHUTTING_DOWN = 0x8B, "Server shutting down";
    BAD_AUTHENTICATION_METHOD = 0x8C, "Bad authentication method";
    KEEP_ALIVE_TIMEOUT = 0x8D, "Keep Alive timeout";
    SESSION_TAKEN_OVER = 0x8E, "Session taken over";
    TOPIC_FILTER_INVALID = 0x8F, "Topic Filter invalid";
    TOPIC_NAME_INVALID = 0x90, "Topic Name invalid";
    PACKET_IDENTIFIER_IN_USE = 0x91, "Packet Identifier in use";
    PACKET_IDENTIFIER_NOT_FOUND = 0x92, "Packet Identifier not found";
    RECEIVE_MAXIMUM_EXCEEDED = 0x93, "Receive Maximum exceeded";
    TOPIC_ALIAS_INVALID = 0x94, "Topic Alias invalid";
    PACKET_TOO_LARGE = 0x95, "Packet too large";
    MESSAGE_RATE_TOO_HIGH = 0x96, "Message rate too high";
    QUOTA_EXCEEDED = 0x97, "Quota exceeded";
    ADMINISTRATIVE_ACTION = 0x98, "Administrative action";
    PAYLOAD_FORMAT_INVALID = 0x99, "Payload format invalid";
    RETAIN_NOT_SUPPORTED = 0x9A, "Retain not supported";
    QOS_NOT_SUPPORTED = 0x9B, "QoS not supported";
    USE_ANOTHER_SERVER = 0x9C, "Use another server";
    SERVER_MOVED = 0x9D, "Server moved";
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E, "Shared Subscriptions not supported";
    CONNECTION_RATE_EXCEEDED = 0x9F, "Connection rate exceeded";
    MAXIMUM_CONNECT_TIME = 0xA0, "Maximum connect time";
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1, "Subscription Identifiers not supported";
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2, "Wildcard Subscriptions not supported";
}

impl ReasonCode {
    /// 0x00 in DISCONNECT.
    pub const NORMAL_DISCONNECTION: ReasonCode = ReasonCode::SUCCESS;
    /// 0x00 in SUBACK.
    pub const GRANTED_QOS_0: ReasonCode = ReasonCode::SUCCESS;

    /// The code for `byte`, if the spec defines one.
    pub const fn new(byte: u8) -> Option<ReasonCode> {
        if NAMES[byte as usize].is_empty() {
            None
        } else {
            Some(ReasonCode(byte))
        }
    }

    pub const fn as_u8(self) -> u8 {
        self.0
    }

    /// Codes at or above 0x80 are failures; below are successes, in every
    /// packet that carries them.
    pub const fn is_error(self) -> bool {
        self.0 >= 0x80
    }

    /// The spec's name for the byte (the 0x00 code reads "Success").
    pub fn name(self) -> &'static str {
        NAMES[usize::from(self.0)]
    }

    /// Whether v5 lets `packet` carry this code (the table in §2.4 and the
    /// per-packet lists). PUBLISH, SUBSCRIBE, UNSUBSCRIBE, CONNECT and PINGs
    /// carry none.
    pub fn is_allowed_in(self, packet: PacketType) -> bool {
        let allowed: &[u8] = match packet {
            PacketType::ConnAck => CONNACK,
            PacketType::PubAck | PacketType::PubRec => PUBACK_PUBREC,
            PacketType::PubRel | PacketType::PubComp => PUBREL_PUBCOMP,
            PacketType::SubAck => SUBACK,
            PacketType::UnsubAck => UNSUBACK,
            PacketType::Disconnect => DISCONNECT,
            PacketType::Auth => AUTH,
            _ => &[],
        };
        allowed.contains(&self.0)
    }
}

/// The name of each byte, "" where undefined: an O(1) validity check.
const NAMES: [&str; 256] = {
    let mut names = [""; 256];
    let mut i = 0;
    while i < KNOWN.len() {
        names[KNOWN[i].0 as usize] = KNOWN[i].1;
        i += 1;
    }
    names
};

/// The table must be strictly ascending: a duplicate byte would silently
/// rename a code in `NAMES`.
const _: () = {
    let mut i = 1;
    while i < KNOWN.len() {
        assert!(KNOWN[i - 1].0 < KNOWN[i].0);
        i += 1;
    }
};

const CONNACK: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK_PUBREC: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_PUBCOMP: &[u8] = &[0x00, 0x92];
const SUBACK: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH: &[u8] = &[0x00, 0x18, 0x19];

impl TryFrom<u8> for ReasonCode {
    type Error = u8;

    /// Fails with the byte itself when the spec defines no such code.
    fn try_from(byte: u8) -> Result<ReasonCode, u8> {
        ReasonCode::new(byte).ok_or(byte)
    }
}

impl From<ReasonCode> for u8 {
    fn from(code: ReasonCode) -> u8 {
        code.0
    }
}

impl fmt::Debug for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x} {}", self.0, self.name())
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The 3.1.1 CONNACK return codes (§3.2.2.3). `decode` and `encode` turn them
/// into and out of `ReasonCode`s, so the broker only ever sees v5 codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnectReturnCode {
    Accepted = 0,
    UnacceptableProtocolVersion = 1,
    IdentifierRejected = 2,
    ServerUnavailable = 3,
    BadUserNameOrPassword = 4,
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    pub fn from_u8(byte: u8) -> Option<ConnectReturnCode> {
        use ConnectReturnCode::*;
        Some(match byte {
            0 => Accepted,
            1 => UnacceptableProtocolVersion,
            2 => IdentifierRejected,
            3 => ServerUnavailable,
            4 => BadUserNameOrPassword,
            5 => NotAuthorized,
            _ => return None,
        })
    }

    /// The v5 code with the same meaning.
    pub fn reason(self) -> ReasonCode {
        match self {
            ConnectReturnCode::Accepted => ReasonCode::SUCCESS,
            ConnectReturnCode::UnacceptableProtocolVersion => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            ConnectReturnCode::IdentifierRejected => ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            ConnectReturnCode::ServerUnavailable => ReasonCode::SERVER_UNAVAILABLE,
            ConnectReturnCode::BadUserNameOrPassword => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            ConnectReturnCode::NotAuthorized => ReasonCode::NOT_AUTHORIZED,
        }
    }

    /// The 3.1.1 code for a v5 one, if 3.1.1 has it. No lossy fallback:
    /// choosing what a v3.1.1 client is told instead (e.g. "server
    /// unavailable" for "quota exceeded") is the session's decision.
    pub fn from_reason(reason: ReasonCode) -> Option<ConnectReturnCode> {
        use ConnectReturnCode::*;
        [
            Accepted,
            UnacceptableProtocolVersion,
            IdentifierRejected,
            ServerUnavailable,
            BadUserNameOrPassword,
            NotAuthorized,
        ]
        .into_iter()
        .find(|code| code.reason() == reason)
    }
}

/// The single failure code of a 3.1.1 SUBACK; every v5 failure maps to it.
pub const SUBACK_FAILURE_V3: u8 = 0x80;
