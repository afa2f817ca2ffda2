//! `Packet` to bytes, for either protocol version.
//!
//! The body is built in a scratch buffer first, because the remaining length
//! comes before it and depends on it; a PUBLISH payload is left out of the
//! scratch and copied once, straight into the output. Every check happens
//! before the first byte reaches `out`, so a failed encode leaves it as it was.
//! Encoders write the shortest form the spec allows (e.g. a 4-byte v5 PUBACK
//! for success without properties), which is also what `decode` reads back
//! to an equal value.

use bytes::{BufMut, Bytes, BytesMut};

use crate::framing::{PACKET_BYTES_MAX, REMAINING_LENGTH_MAX, put_varint, varint_bytes};
use crate::packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, PubAck, Publish, QoS, SubAck, Subscribe, UnsubAck,
    Unsubscribe, Version,
};
use crate::properties::{self, PropertySet};
use crate::reason::{ConnectReturnCode, SUBACK_FAILURE_V3};
use crate::wire::{put_binary, put_string};
use crate::{EncodeError, PacketType, ReasonCode};

/// Appends `packet` to `out` as `version` speaks it.
///
/// `packet_bytes_max` is the largest packet the peer accepts (its v5 Maximum
/// Packet Size, or our own cap for 3.1.1), fixed header included; a bigger
/// packet is refused with `EncodeError::PacketTooLarge` so that the session
/// can drop optional properties and retry, or drop the message. For 3.1.1,
/// v5-only fields (properties, subscription options) are left out; a reason
/// code 3.1.1 cannot express is an error. A CONNECT is written at its own
/// `version`, not the argument's.
pub fn encode(
    packet: &Packet,
    version: Version,
    packet_bytes_max: usize,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let mut body = BytesMut::with_capacity(64);
    let mut payload: Option<&Bytes> = None;
    let packet_type = packet.packet_type();
    let mut flags = packet_type.fixed_flags().unwrap_or(0);
    let v5 = version == Version::V5;
    match packet {
        Packet::Connect(p) => connect(p, &mut body)?,
        Packet::ConnAck(p) => connack(p, v5, &mut body)?,
        Packet::Publish(p) => {
            flags = publish(p, v5, &mut body)?;
            payload = Some(&p.payload);
        }
        Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
            puback(p, packet_type, version, &mut body)?
        }
        Packet::Subscribe(p) => subscribe(p, v5, &mut body)?,
        Packet::SubAck(p) => suback(p, version, &mut body)?,
        Packet::Unsubscribe(p) => unsubscribe(p, v5, &mut body)?,
        Packet::UnsubAck(p) => unsuback(p, version, &mut body)?,
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(p) => disconnect(p, version, &mut body)?,
        Packet::Auth(p) if v5 => auth(p, &mut body)?,
        Packet::Auth(_) => {
            return Err(EncodeError::NotInVersion {
                packet: packet_type,
                version,
            });
        }
    }

    let remaining = body.len() + payload.map_or(0, Bytes::len);
    if remaining > REMAINING_LENGTH_MAX {
        return Err(EncodeError::PacketTooLarge {
            bytes: remaining.saturating_add(5),
            max: PACKET_BYTES_MAX.min(packet_bytes_max),
        });
    }
    let packet_bytes = 1 + varint_bytes(remaining) + remaining;
    if packet_bytes > packet_bytes_max {
        return Err(EncodeError::PacketTooLarge {
            bytes: packet_bytes,
            max: packet_bytes_max,
        });
    }
    out.reserve(packet_bytes);
    out.put_u8(((packet_type as u8) << 4) | flags);
    put_varint(out, remaining);
    out.extend_from_slice(&body);
    if let Some(payload) = payload {
        out.extend_from_slice(payload);
    }
    Ok(())
}

/// Checks that `reason` may appear in `packet` on a v5 connection.
fn allowed(reason: ReasonCode, packet: PacketType, version: Version) -> Result<(), EncodeError> {
    if !reason.is_allowed_in(packet) {
        return Err(EncodeError::ReasonNotAllowed {
            packet,
            reason,
            version,
        });
    }
    Ok(())
}

/// Checks that a 3.1.1 packet, which has no reason code, is a success.
fn success_only(
    reason: ReasonCode,
    packet: PacketType,
    version: Version,
) -> Result<(), EncodeError> {
    if reason != ReasonCode::SUCCESS {
        return Err(EncodeError::ReasonNotAllowed {
            packet,
            reason,
            version,
        });
    }
    Ok(())
}

fn connect(p: &Connect, out: &mut BytesMut) -> Result<(), EncodeError> {
    let v5 = p.version == Version::V5;
    if !v5 && p.password.is_some() && p.username.is_none() {
        return Err(EncodeError::PasswordWithoutUsername);
    }
    put_string(out, "MQTT")?;
    out.put_u8(p.version.level());
    let mut flags = 0u8;
    if p.username.is_some() {
        flags |= 0x80;
    }
    if p.password.is_some() {
        flags |= 0x40;
    }
    if let Some(will) = &p.will {
        flags |= 0x04 | ((will.qos as u8) << 3);
        if will.retain {
            flags |= 0x20;
        }
    }
    if p.clean_start {
        flags |= 0x02;
    }
    out.put_u8(flags);
    out.put_u16(p.keep_alive_s);
    if v5 {
        properties::write(&p.properties, PacketType::Connect, out)?;
    }
    put_string(out, &p.client_id)?;
    if let Some(will) = &p.will {
        if v5 {
            properties::write(&will.properties, PacketType::Connect, out)?;
        }
        put_string(out, &will.topic)?;
        put_binary(out, &will.payload)?;
    }
    if let Some(username) = &p.username {
        put_string(out, username)?;
    }
    if let Some(password) = &p.password {
        put_binary(out, password)?;
    }
    Ok(())
}

fn connack(p: &ConnAck, v5: bool, out: &mut BytesMut) -> Result<(), EncodeError> {
    out.put_u8(u8::from(p.session_present));
    if v5 {
        allowed(p.reason, PacketType::ConnAck, Version::V5)?;
        out.put_u8(p.reason.as_u8());
        properties::write(&p.properties, PacketType::ConnAck, out)
    } else {
        let code =
            ConnectReturnCode::from_reason(p.reason).ok_or(EncodeError::ReasonNotAllowed {
                packet: PacketType::ConnAck,
                reason: p.reason,
                version: Version::V3_1_1,
            })?;
        out.put_u8(code as u8);
        Ok(())
    }
}

/// Writes the variable header and returns the fixed-header flags; the caller
/// appends the payload.
fn publish(p: &Publish, v5: bool, out: &mut BytesMut) -> Result<u8, EncodeError> {
    if (p.qos == QoS::AtMostOnce) == p.packet_id.is_some() {
        return Err(EncodeError::PacketIdMismatch {
            qos: p.qos,
            has_id: p.packet_id.is_some(),
        });
    }
    if p.dup && p.qos == QoS::AtMostOnce {
        return Err(EncodeError::DupWithQoS0);
    }
    put_string(out, &p.topic)?;
    if let Some(id) = p.packet_id {
        out.put_u16(id.get());
    }
    if v5 {
        properties::write(&p.properties, PacketType::Publish, out)?;
    }
    Ok((u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain))
}

fn puback(
    p: &PubAck,
    packet: PacketType,
    version: Version,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    out.put_u16(p.packet_id.get());
    if version == Version::V3_1_1 {
        return success_only(p.reason, packet, version);
    }
    allowed(p.reason, packet, version)?;
    if p.reason == ReasonCode::SUCCESS && p.properties.is_empty() {
        return Ok(());
    }
    out.put_u8(p.reason.as_u8());
    if p.properties.is_empty() {
        return Ok(());
    }
    properties::write(&p.properties, packet, out)
}

fn subscribe(p: &Subscribe, v5: bool, out: &mut BytesMut) -> Result<(), EncodeError> {
    if p.subscriptions.is_empty() {
        return Err(EncodeError::EmptyPayload {
            packet: PacketType::Subscribe,
        });
    }
    out.put_u16(p.packet_id.get());
    if v5 {
        properties::write(&p.properties, PacketType::Subscribe, out)?;
    }
    for sub in &p.subscriptions {
        put_string(out, &sub.filter)?;
        let mut options = sub.qos as u8;
        if v5 {
            options |= (u8::from(sub.no_local) << 2)
                | (u8::from(sub.retain_as_published) << 3)
                | ((sub.retain_handling as u8) << 4);
        }
        out.put_u8(options);
    }
    Ok(())
}

fn suback(p: &SubAck, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
    if p.reasons.is_empty() {
        return Err(EncodeError::EmptyPayload {
            packet: PacketType::SubAck,
        });
    }
    out.put_u16(p.packet_id.get());
    if version == Version::V5 {
        properties::write(&p.properties, PacketType::SubAck, out)?;
    }
    for &reason in &p.reasons {
        allowed(reason, PacketType::SubAck, version)?;
        // 3.1.1 has one failure code; every v5 failure becomes it.
        let byte = match version {
            Version::V3_1_1 if reason.is_error() => SUBACK_FAILURE_V3,
            _ => reason.as_u8(),
        };
        out.put_u8(byte);
    }
    Ok(())
}

fn unsubscribe(p: &Unsubscribe, v5: bool, out: &mut BytesMut) -> Result<(), EncodeError> {
    if p.filters.is_empty() {
        return Err(EncodeError::EmptyPayload {
            packet: PacketType::Unsubscribe,
        });
    }
    out.put_u16(p.packet_id.get());
    if v5 {
        properties::write(&p.properties, PacketType::Unsubscribe, out)?;
    }
    for filter in &p.filters {
        put_string(out, filter)?;
    }
    Ok(())
}

fn unsuback(p: &UnsubAck, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
    out.put_u16(p.packet_id.get());
    if version == Version::V3_1_1 {
        return Ok(());
    }
    if p.reasons.is_empty() {
        return Err(EncodeError::EmptyPayload {
            packet: PacketType::UnsubAck,
        });
    }
    properties::write(&p.properties, PacketType::UnsubAck, out)?;
    for &reason in &p.reasons {
        allowed(reason, PacketType::UnsubAck, version)?;
        out.put_u8(reason.as_u8());
    }
    Ok(())
}

fn disconnect(p: &Disconnect, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
    if version == Version::V3_1_1 {
        return success_only(p.reason, PacketType::Disconnect, version);
    }
    reason_and_properties(p.reason, &p.properties, PacketType::Disconnect, out)
}

fn auth(p: &Auth, out: &mut BytesMut) -> Result<(), EncodeError> {
    reason_and_properties(p.reason, &p.properties, PacketType::Auth, out)
}

/// DISCONNECT and AUTH: both left off when success without properties, the
/// property block alone left off when empty.
fn reason_and_properties<P: PropertySet>(
    reason: ReasonCode,
    props: &P,
    packet: PacketType,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    allowed(reason, packet, Version::V5)?;
    if reason == ReasonCode::SUCCESS && props.is_empty() {
        return Ok(());
    }
    out.put_u8(reason.as_u8());
    if props.is_empty() {
        return Ok(());
    }
    properties::write(props, packet, out)
}
