//! MQTT 5 properties: one struct per packet holding exactly the properties
//! that packet may carry, and the rules that apply to all of them.
//!
//! A struct per packet, rather than one bag of options, lets the type say
//! which properties a packet can have, so the broker cannot set a property a
//! peer would reject. Decoding enforces what §2.2.2 and the per-packet
//! sections demand: an identifier not allowed in the packet is malformed, a
//! second copy of a single-valued property is a protocol error, and so is a
//! value the spec forbids (a zero Receive Maximum, a Payload Format
//! Indicator of 2). Encoding checks the same rules with the same predicates,
//! so whatever `encode` writes, `decode` accepts.

use bytes::{BufMut, Bytes, BytesMut};

use crate::framing::VARINT_MAX;
use crate::wire::{Reader, put_binary, put_block, put_string};
use crate::{DecodeError, EncodeError, PacketType, QoS};

/// Property identifiers (v5 §2.2.2.2), named as the spec names them.
pub mod id {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// User properties keep their order and may repeat keys (v5 §3.1.2.11.8).
pub type UserProperties = Vec<(String, String)>;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConnectProperties {
    /// Absent means 0: the session ends with the connection.
    pub session_expiry_interval_s: Option<u32>,
    /// Non-zero. Absent means 65,535.
    pub receive_maximum: Option<u16>,
    /// In bytes, non-zero. The largest packet the client accepts.
    pub maximum_packet_size: Option<u32>,
    pub topic_alias_maximum: Option<u16>,
    pub request_response_information: Option<bool>,
    pub request_problem_information: Option<bool>,
    pub user_properties: UserProperties,
    pub authentication_method: Option<String>,
    /// Only with `authentication_method`.
    pub authentication_data: Option<Bytes>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WillProperties {
    pub will_delay_interval_s: Option<u32>,
    /// `true`: the payload is UTF-8 (the indicator's value 1).
    pub payload_format_indicator: Option<bool>,
    pub message_expiry_interval_s: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: UserProperties,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConnAckProperties {
    pub session_expiry_interval_s: Option<u32>,
    /// Non-zero.
    pub receive_maximum: Option<u16>,
    /// At most `AtLeastOnce`: absent means the server supports QoS 2.
    pub maximum_qos: Option<QoS>,
    pub retain_available: Option<bool>,
    /// In bytes, non-zero.
    pub maximum_packet_size: Option<u32>,
    pub assigned_client_identifier: Option<String>,
    pub topic_alias_maximum: Option<u16>,
    pub reason_string: Option<String>,
    pub user_properties: UserProperties,
    pub wildcard_subscription_available: Option<bool>,
    pub subscription_identifiers_available: Option<bool>,
    pub shared_subscription_available: Option<bool>,
    pub server_keep_alive_s: Option<u16>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub authentication_method: Option<String>,
    /// Only with `authentication_method`.
    pub authentication_data: Option<Bytes>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PublishProperties {
    /// `true`: the payload is UTF-8 (the indicator's value 1). The codec
    /// does not check the payload; validating it is optional in the spec and
    /// costs a pass over every payload, so it is the broker's choice.
    pub payload_format_indicator: Option<bool>,
    pub message_expiry_interval_s: Option<u32>,
    /// Non-zero. Resolving aliases is the session's job.
    pub topic_alias: Option<u16>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: UserProperties,
    /// Server to client only; each in 1..=268,435,455.
    pub subscription_identifiers: Vec<u32>,
    pub content_type: Option<String>,
}

/// The properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AckProperties {
    pub reason_string: Option<String>,
    pub user_properties: UserProperties,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SubscribeProperties {
    /// In 1..=268,435,455.
    pub subscription_identifier: Option<u32>,
    pub user_properties: UserProperties,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UnsubscribeProperties {
    pub user_properties: UserProperties,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DisconnectProperties {
    pub session_expiry_interval_s: Option<u32>,
    pub reason_string: Option<String>,
    pub user_properties: UserProperties,
    pub server_reference: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AuthProperties {
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Bytes>,
    pub reason_string: Option<String>,
    pub user_properties: UserProperties,
}

/// What every property struct knows: how to absorb one property read from
/// the wire and how to write all of its own.
pub(crate) trait PropertySet: Default + PartialEq {
    /// Reads the value of property `id`, whose identifier is already read.
    fn read_one(&mut self, id: u8, r: &mut Reader) -> Result<(), DecodeError>;
    /// Writes every present property, in identifier order.
    fn write_all(&self, w: &mut Writer<'_>) -> Result<(), EncodeError>;
    /// Rules across properties, checked once the block is read.
    fn check(&self, _packet: PacketType) -> Result<(), DecodeError> {
        Ok(())
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Reads a property block: its varint length, then identifier-value pairs.
pub(crate) fn read<P: PropertySet>(r: &mut Reader) -> Result<P, DecodeError> {
    let len = r.varint()?;
    let mut block = r.sub(len as usize)?;
    let mut props = P::default();
    while !block.is_empty() {
        let id = block.varint()?;
        // Every defined identifier is below 0x80, so anything wider is
        // undefined; report it with its full value.
        let Ok(id) = u8::try_from(id) else {
            return Err(DecodeError::PropertyNotAllowed {
                packet: block.packet,
                id,
            });
        };
        props.read_one(id, &mut block)?;
    }
    props.check(r.packet)?;
    Ok(props)
}

/// Writes a property block, length first.
pub(crate) fn write<P: PropertySet>(
    props: &P,
    packet: PacketType,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let mut block = BytesMut::new();
    props.write_all(&mut Writer {
        out: &mut block,
        packet,
    })?;
    put_block(out, &block)
}

fn not_allowed(packet: PacketType, id: u8) -> DecodeError {
    DecodeError::PropertyNotAllowed {
        packet,
        id: u32::from(id),
    }
}

/// Appends to a property that may repeat.
fn push<T>(list: &mut Vec<T>, value: T) -> Result<(), DecodeError> {
    list.push(value);
    Ok(())
}

/// Stores a single-valued property, refusing a second copy.
fn once<T>(slot: &mut Option<T>, value: T, packet: PacketType, id: u8) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty { packet, id });
    }
    *slot = Some(value);
    Ok(())
}

fn invalid(packet: PacketType, id: u8, value: u32) -> DecodeError {
    DecodeError::InvalidPropertyValue { packet, id, value }
}

/// A byte that must be 0 or 1.
fn read_flag(r: &mut Reader, id: u8) -> Result<bool, DecodeError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(invalid(r.packet, id, u32::from(other))),
    }
}

fn read_nonzero_u16(r: &mut Reader, id: u8) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(invalid(r.packet, id, 0)),
        v => Ok(v),
    }
}

fn read_nonzero_u32(r: &mut Reader, id: u8) -> Result<u32, DecodeError> {
    match r.u32()? {
        0 => Err(invalid(r.packet, id, 0)),
        v => Ok(v),
    }
}

fn read_subscription_identifier(r: &mut Reader, id: u8) -> Result<u32, DecodeError> {
    match r.varint()? {
        0 => Err(invalid(r.packet, id, 0)),
        v => Ok(v),
    }
}

fn read_maximum_qos(r: &mut Reader, id: u8) -> Result<QoS, DecodeError> {
    match r.u8()? {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        other => Err(invalid(r.packet, id, u32::from(other))),
    }
}

fn read_user_property(r: &mut Reader) -> Result<(String, String), DecodeError> {
    Ok((r.string()?, r.string()?))
}

/// Writes identifier-value pairs into a property block, checking each value
/// against the same rules the reader enforces.
pub(crate) struct Writer<'a> {
    out: &'a mut BytesMut,
    packet: PacketType,
}

impl Writer<'_> {
    fn invalid(&self, id: u8, value: u32) -> EncodeError {
        EncodeError::InvalidPropertyValue {
            packet: self.packet,
            id,
            value,
        }
    }

    fn flag(&mut self, id: u8, value: Option<bool>) {
        if let Some(v) = value {
            self.out.put_slice(&[id, u8::from(v)]);
        }
    }

    fn u16(&mut self, id: u8, value: Option<u16>) {
        if let Some(v) = value {
            self.out.put_u8(id);
            self.out.put_u16(v);
        }
    }

    fn nonzero_u16(&mut self, id: u8, value: Option<u16>) -> Result<(), EncodeError> {
        if value == Some(0) {
            return Err(self.invalid(id, 0));
        }
        self.u16(id, value);
        Ok(())
    }

    fn u32(&mut self, id: u8, value: Option<u32>) {
        if let Some(v) = value {
            self.out.put_u8(id);
            self.out.put_u32(v);
        }
    }

    fn nonzero_u32(&mut self, id: u8, value: Option<u32>) -> Result<(), EncodeError> {
        if value == Some(0) {
            return Err(self.invalid(id, 0));
        }
        self.u32(id, value);
        Ok(())
    }

    fn subscription_identifier(&mut self, id: u8, value: u32) -> Result<(), EncodeError> {
        if value == 0 || value > VARINT_MAX {
            return Err(self.invalid(id, value));
        }
        self.out.put_u8(id);
        crate::framing::put_varint(self.out, value as usize);
        Ok(())
    }

    fn maximum_qos(&mut self, id: u8, value: Option<QoS>) -> Result<(), EncodeError> {
        match value {
            None => Ok(()),
            Some(QoS::ExactlyOnce) => Err(self.invalid(id, 2)),
            Some(qos) => {
                self.out.put_slice(&[id, qos as u8]);
                Ok(())
            }
        }
    }

    fn string(&mut self, id: u8, value: Option<&String>) -> Result<(), EncodeError> {
        if let Some(v) = value {
            self.out.put_u8(id);
            put_string(self.out, v)?;
        }
        Ok(())
    }

    fn binary(&mut self, id: u8, value: Option<&Bytes>) -> Result<(), EncodeError> {
        if let Some(v) = value {
            self.out.put_u8(id);
            put_binary(self.out, v)?;
        }
        Ok(())
    }

    fn user_properties(&mut self, pairs: &UserProperties) -> Result<(), EncodeError> {
        for (key, value) in pairs {
            self.out.put_u8(id::USER_PROPERTY);
            put_string(self.out, key)?;
            put_string(self.out, value)?;
        }
        Ok(())
    }

    fn auth(&mut self, method: Option<&String>, data: Option<&Bytes>) -> Result<(), EncodeError> {
        if method.is_none() && data.is_some() {
            return Err(EncodeError::AuthDataWithoutMethod {
                packet: self.packet,
            });
        }
        self.string(id::AUTHENTICATION_METHOD, method)?;
        self.binary(id::AUTHENTICATION_DATA, data)
    }
}

fn check_auth(
    packet: PacketType,
    method: &Option<String>,
    data: &Option<Bytes>,
) -> Result<(), DecodeError> {
    if method.is_none() && data.is_some() {
        return Err(DecodeError::AuthDataWithoutMethod { packet });
    }
    Ok(())
}

impl PropertySet for ConnectProperties {
    fn read_one(&mut self, id: u8, r: &mut Reader) -> Result<(), DecodeError> {
        let p = r.packet;
        match id {
            id::SESSION_EXPIRY_INTERVAL => {
                once(&mut self.session_expiry_interval_s, r.u32()?, p, id)
            }
            id::RECEIVE_MAXIMUM => once(&mut self.receive_maximum, read_nonzero_u16(r, id)?, p, id),
            id::MAXIMUM_PACKET_SIZE => once(
                &mut self.maximum_packet_size,
                read_nonzero_u32(r, id)?,
                p,
                id,
            ),
            id::TOPIC_ALIAS_MAXIMUM => once(&mut self.topic_alias_maximum, r.u16()?, p, id),
            id::REQUEST_RESPONSE_INFORMATION => once(
                &mut self.request_response_information,
                read_flag(r, id)?,
                p,
                id,
            ),
            id::REQUEST_PROBLEM_INFORMATION => once(
                &mut self.request_problem_information,
                read_flag(r, id)?,
                p,
                id,
            ),
            id::USER_PROPERTY => push(&mut self.user_properties, read_user_property(r)?),
            id::AUTHENTICATION_METHOD => once(&mut self.authentication_method, r.string()?, p, id),
            id::AUTHENTICATION_DATA => once(&mut self.authentication_data, r.binary()?, p, id),
            _ => Err(not_allowed(p, id)),
        }
    }

    fn write_all(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u32(id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval_s);
        w.auth(
            self.authentication_method.as_ref(),
            self.authentication_data.as_ref(),
        )?;
        w.flag(
            id::REQUEST_PROBLEM_INFORMATION,
            self.request_problem_information,
        );
        w.flag(
            id::REQUEST_RESPONSE_INFORMATION,
            self.request_response_information,
        );
        w.nonzero_u16(id::RECEIVE_MAXIMUM, self.receive_maximum)?;
        w.u16(id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        w.user_properties(&self.user_properties)?;
        w.nonzero_u32(id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size)
    }

    fn check(&self, packet: PacketType) -> Result<(), DecodeError> {
        check_auth(
            packet,
            &self.authentication_method,
            &self.authentication_data,
        )
    }
}

impl PropertySet for WillProperties {
    fn read_one(&mut self, id: u8, r: &mut Reader) -> Result<(), DecodeError> {
        let p = r.packet;
        match id {
            id::PAYLOAD_FORMAT_INDICATOR => {
                once(&mut self.payload_format_indicator, read_flag(r, id)?, p, id)
            }
            id::MESSAGE_EXPIRY_INTERVAL => {
                once(&mut self.message_expiry_interval_s, r.u32()?, p, id)
            }
            id::CONTENT_TYPE => once(&mut self.content_type, r.string()?, p, id),
            id::RESPONSE_TOPIC => once(&mut self.response_topic, r.string()?, p, id),
            id::CORRELATION_DATA => once(&mut self.correlation_data, r.binary()?, p, id),
            id::WILL_DELAY_INTERVAL => once(&mut self.will_delay_interval_s, r.u32()?, p, id),
            id::USER_PROPERTY => push(&mut self.user_properties, read_user_property(r)?),
            _ => Err(not_allowed(p, id)),
        }
    }

    fn write_all(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.flag(id::PAYLOAD_FORMAT_INDICATOR, self.payload_format_indicator);
        w.u32(id::MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval_s);
        w.string(id::CONTENT_TYPE, self.content_type.as_ref())?;
        w.string(id::RESPONSE_TOPIC, self.response_topic.as_ref())?;
        w.binary(id::CORRELATION_DATA, self.correlation_data.as_ref())?;
        w.u32(id::WILL_DELAY_INTERVAL, self.will_delay_interval_s);
        w.user_properties(&self.user_properties)
    }
}

impl PropertySet for ConnAckProperties {
    fn read_one(&mut self, id: u8, r: &mut Reader) -> Result<(), DecodeError> {
        let p = r.packet;
        match id {
            id::SESSION_EXPIRY_INTERVAL => {
                once(&mut self.session_expiry_interval_s, r.u32()?, p, id)
            }
            id::RECEIVE_MAXIMUM => once(&mut self.receive_maximum, read_nonzero_u16(r, id)?, p, id),
            id::MAXIMUM_QOS => once(&mut self.maximum_qos, read_maximum_qos(r, id)?, p, id),
            id::RETAIN_AVAILABLE => once(&mut self.retain_available, read_flag(r, id)?, p, id),
            id::MAXIMUM_PACKET_SIZE => once(
                &mut self.maximum_packet_size,
                read_nonzero_u32(r, id)?,
                p,
                id,
            ),
            id::ASSIGNED_CLIENT_IDENTIFIER => {
                once(&mut self.assigned_client_identifier, r.string()?, p, id)
            }
            id::TOPIC_ALIAS_MAXIMUM => once(&mut self.topic_alias_maximum, r.u16()?, p, id),
            id::REASON_STRING => once(&mut self.reason_string, r.string()?, p, id),
            id::USER_PROPERTY => push(&mut self.user_properties, read_user_property(r)?),
            id::WILDCARD_SUBSCRIPTION_AVAILABLE => once(
                &mut self.wildcard_subscription_available,
                read_flag(r, id)?,
                p,
                id,
            ),
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => once(
                &mut self.subscription_identifiers_available,
                read_flag(r, id)?,
                p,
                id,
            ),
            id::SHARED_SUBSCRIPTION_AVAILABLE => once(
                &mut self.shared_subscription_available,
                read_flag(r, id)?,
                p,
                id,
            ),
            id::SERVER_KEEP_ALIVE => once(&mut self.server_keep_alive_s, r.u16()?, p, id),
            id::RESPONSE_INFORMATION => once(&mut self.response_information, r.string()?, p, id),
            id::SERVER_REFERENCE => once(&mut self.server_reference, r.string()?, p, id),
            id::AUTHENTICATION_METHOD => once(&mut self.authentication_method, r.string()?, p, id),
            id::AUTHENTICATION_DATA => once(&mut self.authentication_data, r.binary()?, p, id),
            _ => Err(not_allowed(p, id)),
        }
    }

    fn write_all(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u32(id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval_s);
        w.string(
            id::ASSIGNED_CLIENT_IDENTIFIER,
            self.assigned_client_identifier.as_ref(),
        )?;
        w.u16(id::SERVER_KEEP_ALIVE, self.server_keep_alive_s);
        w.auth(
            self.authentication_method.as_ref(),
            self.authentication_data.as_ref(),
        )?;
        w.string(id::RESPONSE_INFORMATION, self.response_information.as_ref())?;
        w.string(id::SERVER_REFERENCE, self.server_reference.as_ref())?;
        w.string(id::REASON_STRING, self.reason_string.as_ref())?;
        w.nonzero_u16(id::RECEIVE_MAXIMUM, self.receive_maximum)?;
        w.u16(id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        w.maximum_qos(id::MAXIMUM_QOS, self.maximum_qos)?;
        w.flag(id::RETAIN_AVAILABLE, self.retain_available);
        w.user_properties(&self.user_properties)?;
        w.nonzero_u32(id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size)?;
        w.flag(
            id::WILDCARD_SUBSCRIPTION_AVAILABLE,
            self.wildcard_subscription_available,
        );
        w.flag(
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            self.subscription_identifiers_available,
        );
        w.flag(
            id::SHARED_SUBSCRIPTION_AVAILABLE,
            self.shared_subscription_available,
        );
        Ok(())
    }

    fn check(&self, packet: PacketType) -> Result<(), DecodeError> {
        check_auth(
            packet,
            &self.authentication_method,
            &self.authentication_data,
        )
    }
}

impl PropertySet for PublishProperties {
    fn read_one(&mut self, id: u8, r: &mut Reader) -> Result<(), DecodeError> {
        let p = r.packet;
        match id {
            id::PAYLOAD_FORMAT_INDICATOR => {
                once(&mut self.payload_format_indicator, read_flag(r, id)?, p, id)
            }
            id::MESSAGE_EXPIRY_INTERVAL => {
                once(&mut self.message_expiry_interval_s, r.u32()?, p, id)
            }
            id::CONTENT_TYPE => once(&mut self.content_type, r.string()?, p, id),
            id::RESPONSE_TOPIC => once(&mut self.response_topic, r.string()?, p, id),
            id::CORRELATION_DATA => once(&mut self.correlation_data, r.binary()?, p, id),
            // The one property that may repeat: one identifier per matching
            // subscription (v5 §3.3.4).
            id::SUBSCRIPTION_IDENTIFIER => push(
                &mut self.subscription_identifiers,
                read_subscription_identifier(r, id)?,
            ),
            id::TOPIC_ALIAS => once(&mut self.topic_alias, read_nonzero_u16(r, id)?, p, id),
            id::USER_PROPERTY => push(&mut self.user_properties, read_user_property(r)?),
            _ => Err(not_allowed(p, id)),
        }
    }

    fn write_all(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.flag(id::PAYLOAD_FORMAT_INDICATOR, self.payload_format_indicator);
        w.u32(id::MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval_s);
        w.string(id::CONTENT_TYPE, self.content_type.as_ref())?;
        w.string(id::RESPONSE_TOPIC, self.response_topic.as_ref())?;
        w.binary(id::CORRELATION_DATA, self.correlation_data.as_ref())?;
        for &sid in &self.subscription_identifiers {
            w.subscription_identifier(id::SUBSCRIPTION_IDENTIFIER, sid)?;
        }
        w.nonzero_u16(id::TOPIC_ALIAS, self.topic_alias)?;
        w.user_properties(&self.user_properties)
    }
}

impl PropertySet for AckProperties {
    fn read_one(&mut self, id: u8, r: &mut Reader) -> Result<(), DecodeError> {
        let p = r.packet;
        match id {
            id::REASON_STRING => once(&mut self.reason_string, r.string()?, p, id),
            id::USER_PROPERTY => push(&mut self.user_properties, read_user_property(r)?),
            _ => Err(not_allowed(p, id)),
        }
    }

    fn write_all(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.string(id::REASON_STRING, self.reason_string.as_ref())?;
        w.user_properties(&self.user_properties)
    }
}

impl PropertySet for SubscribeProperties {
    fn read_one(&mut self, id: u8, r: &mut Reader) -> Result<(), DecodeError> {
        let p = r.packet;
        match id {
            id::SUBSCRIPTION_IDENTIFIER => once(
                &mut self.subscription_identifier,
                read_subscription_identifier(r, id)?,
                p,
                id,
            ),
            id::USER_PROPERTY => push(&mut self.user_properties, read_user_property(r)?),
            _ => Err(not_allowed(p, id)),
        }
    }

    fn write_all(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if let Some(sid) = self.subscription_identifier {
            w.subscription_identifier(id::SUBSCRIPTION_IDENTIFIER, sid)?;
        }
        w.user_properties(&self.user_properties)
    }
}

impl PropertySet for UnsubscribeProperties {
    fn read_one(&mut self, id: u8, r: &mut Reader) -> Result<(), DecodeError> {
        match id {
            id::USER_PROPERTY => push(&mut self.user_properties, read_user_property(r)?),
            _ => Err(not_allowed(r.packet, id)),
        }
    }

    fn write_all(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.user_properties(&self.user_properties)
    }
}

impl PropertySet for DisconnectProperties {
    fn read_one(&mut self, id: u8, r: &mut Reader) -> Result<(), DecodeError> {
        let p = r.packet;
        match id {
            id::SESSION_EXPIRY_INTERVAL => {
                once(&mut self.session_expiry_interval_s, r.u32()?, p, id)
            }
            id::REASON_STRING => once(&mut self.reason_string, r.string()?, p, id),
            id::USER_PROPERTY => push(&mut self.user_properties, read_user_property(r)?),
            id::SERVER_REFERENCE => once(&mut self.server_reference, r.string()?, p, id),
            _ => Err(not_allowed(p, id)),
        }
    }

    fn write_all(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u32(id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval_s);
        w.string(id::SERVER_REFERENCE, self.server_reference.as_ref())?;
        w.string(id::REASON_STRING, self.reason_string.as_ref())?;
        w.user_properties(&self.user_properties)
    }
}

impl PropertySet for AuthProperties {
    fn read_one(&mut self, id: u8, r: &mut Reader) -> Result<(), DecodeError> {
        let p = r.packet;
        match id {
            id::AUTHENTICATION_METHOD => once(&mut self.authentication_method, r.string()?, p, id),
            id::AUTHENTICATION_DATA => once(&mut self.authentication_data, r.binary()?, p, id),
            id::REASON_STRING => once(&mut self.reason_string, r.string()?, p, id),
            id::USER_PROPERTY => push(&mut self.user_properties, read_user_property(r)?),
            _ => Err(not_allowed(p, id)),
        }
    }

    fn write_all(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.auth(
            self.authentication_method.as_ref(),
            self.authentication_data.as_ref(),
        )?;
        w.string(id::REASON_STRING, self.reason_string.as_ref())?;
        w.user_properties(&self.user_properties)
    }

    fn check(&self, packet: PacketType) -> Result<(), DecodeError> {
        check_auth(
            packet,
            &self.authentication_method,
            &self.authentication_data,
        )
    }
}
