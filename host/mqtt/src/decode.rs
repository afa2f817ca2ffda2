//! Bytes to `Packet`: `framing::check` bounds the packet, then one function
//! per packet type parses its body for either protocol version.
//!
//! The two versions differ by a handful of fields (properties, reason codes,
//! subscription options), so each packet has one parser with `if v5` at
//! those fields rather than two parsers that could drift apart. Every parser
//! ends with `Reader::finish`, so a remaining length that covers more than
//! the fields is malformed rather than silently skipped.

use bytes::{Buf, BytesMut};

use crate::framing::{self, FixedHeader, Frame};
use crate::packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, PubAck, Publish, QoS, RetainHandling, SubAck,
    Subscribe, Subscription, UnsubAck, Unsubscribe, Version, Will,
};
use crate::properties;
use crate::reason::{ConnectReturnCode, SUBACK_FAILURE_V3};
use crate::wire::Reader;
use crate::{DecodeError, PacketType, ReasonCode};

/// Decodes the packet at the start of `buf`, if it is all there.
///
/// - `Ok(Some(packet))`: the packet's bytes were split off `buf`; binary
///   fields and the PUBLISH payload share them, without copying.
/// - `Ok(None)`: more bytes are needed; `buf` is untouched (not even
///   reserved; `framing::check` says how much is missing).
/// - `Err(_)`: the peer broke the protocol or `packet_bytes_max` (the total
///   packet size, fixed header included). A packet that is too large is
///   refused from its fixed header, before its body is buffered. After an
///   error `buf` is in an unspecified state and the connection must close.
///
/// `version` is the connection's, known from its CONNECT; a CONNECT itself is
/// decoded at the level it announces, whatever `version` says.
pub fn decode(
    buf: &mut BytesMut,
    version: Version,
    packet_bytes_max: usize,
) -> Result<Option<Packet>, DecodeError> {
    let header = match framing::check(buf, packet_bytes_max)? {
        Frame::Incomplete { .. } => return Ok(None),
        Frame::Complete(header) => header,
    };
    let mut bytes = buf.split_to(header.packet_bytes()).freeze();
    bytes.advance(header.header_bytes);
    let r = Reader::new(bytes, header.packet_type);
    packet(header, r, version).map(Some)
}

fn packet(header: FixedHeader, mut r: Reader, version: Version) -> Result<Packet, DecodeError> {
    let v5 = version == Version::V5;
    let packet = match header.packet_type {
        PacketType::Connect => Packet::Connect(connect(&mut r)?),
        PacketType::ConnAck => Packet::ConnAck(connack(&mut r, v5)?),
        PacketType::Publish => Packet::Publish(publish(header.flags, &mut r, v5)?),
        PacketType::PubAck => Packet::PubAck(puback(&mut r, v5)?),
        PacketType::PubRec => Packet::PubRec(puback(&mut r, v5)?),
        PacketType::PubRel => Packet::PubRel(puback(&mut r, v5)?),
        PacketType::PubComp => Packet::PubComp(puback(&mut r, v5)?),
        PacketType::Subscribe => Packet::Subscribe(subscribe(&mut r, v5)?),
        PacketType::SubAck => Packet::SubAck(suback(&mut r, v5)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(unsubscribe(&mut r, v5)?),
        PacketType::UnsubAck => Packet::UnsubAck(unsuback(&mut r, v5)?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect(disconnect(&mut r, v5)?),
        PacketType::Auth if v5 => Packet::Auth(auth(&mut r)?),
        PacketType::Auth => return Err(DecodeError::ReservedPacketType(PacketType::Auth as u8)),
    };
    r.finish()?;
    Ok(packet)
}

/// A v5 reason code this packet may carry.
fn reason(r: &mut Reader) -> Result<ReasonCode, DecodeError> {
    let code = r.u8()?;
    ReasonCode::new(code)
        .filter(|reason| reason.is_allowed_in(r.packet))
        .ok_or(DecodeError::InvalidReasonCode {
            packet: r.packet,
            code,
        })
}

fn connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let name = r.string()?;
    let level = r.u8()?;
    // The level decides before the name, so that an MQTT 3.1 client
    // ("MQIsdp", level 3) is told "unacceptable protocol version" rather
    // than just being dropped.
    let version = match level {
        4 => Version::V3_1_1,
        5 => Version::V5,
        _ => return Err(DecodeError::UnsupportedProtocolLevel { level }),
    };
    if name != "MQTT" {
        return Err(DecodeError::InvalidProtocolName { name });
    }
    let v5 = version == Version::V5;

    let flags = r.u8()?;
    let has_username = flags & 0x80 != 0;
    let has_password = flags & 0x40 != 0;
    let will_retain = flags & 0x20 != 0;
    let will_qos = (flags >> 3) & 0b11;
    let has_will = flags & 0x04 != 0;
    let clean_start = flags & 0x02 != 0;
    // Bit 0 is reserved ([MQTT-3.1.2-3]); without a will, its QoS and
    // retain bits must be 0 ([MQTT-3.1.2-11], [MQTT-3.1.2-13]).
    let will_qos = QoS::from_u8(will_qos).filter(|_| flags & 0x01 == 0);
    let Some(will_qos) =
        will_qos.filter(|qos| has_will || (*qos == QoS::AtMostOnce && !will_retain))
    else {
        return Err(DecodeError::InvalidConnectFlags { flags });
    };
    if !v5 && has_password && !has_username {
        return Err(DecodeError::PasswordWithoutUsername);
    }

    let keep_alive_s = r.u16()?;
    let properties = if v5 {
        properties::read(r)?
    } else {
        Default::default()
    };
    let client_id = r.string()?;
    let will = if has_will {
        let properties = if v5 {
            properties::read(r)?
        } else {
            Default::default()
        };
        let topic = r.string()?;
        let payload = r.binary()?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(r.string()?)
    } else {
        None
    };
    let password = if has_password {
        Some(r.binary()?)
    } else {
        None
    };
    Ok(Connect {
        version,
        client_id,
        clean_start,
        keep_alive_s,
        username,
        password,
        will,
        properties,
    })
}

fn connack(r: &mut Reader, v5: bool) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    if flags & !0x01 != 0 {
        return Err(DecodeError::InvalidConnAckFlags { flags });
    }
    let session_present = flags & 0x01 != 0;
    let reason = if v5 {
        reason(r)?
    } else {
        let code = r.u8()?;
        ConnectReturnCode::from_u8(code)
            .ok_or(DecodeError::InvalidReasonCode {
                packet: r.packet,
                code,
            })?
            .reason()
    };
    let properties = if v5 {
        properties::read(r)?
    } else {
        Default::default()
    };
    Ok(ConnAck {
        session_present,
        reason,
        properties,
    })
}

fn publish(flags: u8, r: &mut Reader, v5: bool) -> Result<Publish, DecodeError> {
    let dup = flags & 0b1000 != 0;
    let retain = flags & 0b0001 != 0;
    let qos_bits = (flags >> 1) & 0b11;
    let qos = QoS::from_u8(qos_bits).ok_or(DecodeError::InvalidQoS {
        packet: r.packet,
        qos: qos_bits,
    })?;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::InvalidHeaderFlags {
            packet: r.packet,
            flags,
        });
    }
    let topic = r.string()?;
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        Some(r.packet_id()?)
    };
    let properties = if v5 {
        properties::read(r)?
    } else {
        Default::default()
    };
    let payload = r.rest();
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        packet_id,
        payload,
        properties,
    })
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP. In v5 the reason and the property block
/// may each be left off when they would be empty (§3.4.2.1).
fn puback(r: &mut Reader, v5: bool) -> Result<PubAck, DecodeError> {
    let packet_id = r.packet_id()?;
    let reason = if v5 && !r.is_empty() {
        reason(r)?
    } else {
        ReasonCode::SUCCESS
    };
    let properties = if v5 && !r.is_empty() {
        properties::read(r)?
    } else {
        Default::default()
    };
    Ok(PubAck {
        packet_id,
        reason,
        properties,
    })
}

fn subscribe(r: &mut Reader, v5: bool) -> Result<Subscribe, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = if v5 {
        properties::read(r)?
    } else {
        Default::default()
    };
    let mut subscriptions = Vec::new();
    while !r.is_empty() {
        let filter = r.string()?;
        let options = r.u8()?;
        let reserved = if v5 { 0b1100_0000 } else { 0b1111_1100 };
        if options & reserved != 0 {
            return Err(DecodeError::InvalidSubscriptionOptions { options });
        }
        let qos = QoS::from_u8(options & 0b11).ok_or(DecodeError::InvalidQoS {
            packet: r.packet,
            qos: 3,
        })?;
        let retain_handling = match (options >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtSubscribeIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::InvalidRetainHandling),
        };
        subscriptions.push(Subscription {
            filter,
            qos,
            no_local: options & 0b0100 != 0,
            retain_as_published: options & 0b1000 != 0,
            retain_handling,
        });
    }
    if subscriptions.is_empty() {
        return Err(DecodeError::EmptyPayload { packet: r.packet });
    }
    Ok(Subscribe {
        packet_id,
        subscriptions,
        properties,
    })
}

fn suback(r: &mut Reader, v5: bool) -> Result<SubAck, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = if v5 {
        properties::read(r)?
    } else {
        Default::default()
    };
    let mut reasons = Vec::with_capacity(r.remaining());
    while !r.is_empty() {
        let reason = if v5 {
            reason(r)?
        } else {
            match r.u8()? {
                0 => ReasonCode::GRANTED_QOS_0,
                1 => ReasonCode::GRANTED_QOS_1,
                2 => ReasonCode::GRANTED_QOS_2,
                SUBACK_FAILURE_V3 => ReasonCode::UNSPECIFIED_ERROR,
                code => {
                    return Err(DecodeError::InvalidReasonCode {
                        packet: r.packet,
                        code,
                    });
                }
            }
        };
        reasons.push(reason);
    }
    if reasons.is_empty() {
        return Err(DecodeError::EmptyPayload { packet: r.packet });
    }
    Ok(SubAck {
        packet_id,
        reasons,
        properties,
    })
}

fn unsubscribe(r: &mut Reader, v5: bool) -> Result<Unsubscribe, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = if v5 {
        properties::read(r)?
    } else {
        Default::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.string()?);
    }
    if filters.is_empty() {
        return Err(DecodeError::EmptyPayload { packet: r.packet });
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

fn unsuback(r: &mut Reader, v5: bool) -> Result<UnsubAck, DecodeError> {
    let packet_id = r.packet_id()?;
    if !v5 {
        // 3.1.1's UNSUBACK is the packet id and nothing else.
        return Ok(UnsubAck {
            packet_id,
            reasons: Vec::new(),
            properties: Default::default(),
        });
    }
    let properties = properties::read(r)?;
    let mut reasons = Vec::with_capacity(r.remaining());
    while !r.is_empty() {
        reasons.push(reason(r)?);
    }
    if reasons.is_empty() {
        return Err(DecodeError::EmptyPayload { packet: r.packet });
    }
    Ok(UnsubAck {
        packet_id,
        reasons,
        properties,
    })
}

/// In v5 an empty DISCONNECT means Normal disconnection, and the property
/// block may be left off (§3.14.2.1). In 3.1.1 it is always empty.
fn disconnect(r: &mut Reader, v5: bool) -> Result<Disconnect, DecodeError> {
    let reason = if v5 && !r.is_empty() {
        reason(r)?
    } else {
        ReasonCode::NORMAL_DISCONNECTION
    };
    let properties = if v5 && !r.is_empty() {
        properties::read(r)?
    } else {
        Default::default()
    };
    Ok(Disconnect { reason, properties })
}

/// Same shortening rules as DISCONNECT (§3.15.2.1).
fn auth(r: &mut Reader) -> Result<Auth, DecodeError> {
    let reason = if !r.is_empty() {
        reason(r)?
    } else {
        ReasonCode::SUCCESS
    };
    let properties = if !r.is_empty() {
        properties::read(r)?
    } else {
        Default::default()
    };
    Ok(Auth { reason, properties })
}
