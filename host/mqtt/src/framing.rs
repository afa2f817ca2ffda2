//! Framing: the fixed header, the remaining length, and the size limits that
//! apply before a single body byte is looked at.
//!
//! This is rumqttd's `check` (`rumqttd/src/protocol/v4/mod.rs`) made strict:
//! it reads only the first two to five bytes of a packet, rejects anything
//! over `packet_bytes_max` as soon as the announced length proves it too big
//! (even before the length itself is complete), and otherwise says how many
//! bytes are still missing. A peer therefore cannot make us buffer more than
//! `packet_bytes_max` bytes by announcing a large packet and trickling it in.

use crate::DecodeError;

/// The largest value a Variable Byte Integer can hold: four bytes of seven
/// bits each. It bounds the remaining length and some v5 properties.
pub const VARINT_MAX: u32 = 268_435_455;
/// The largest remaining length MQTT can express.
pub const REMAINING_LENGTH_MAX: usize = VARINT_MAX as usize;
/// Bytes a Variable Byte Integer may take; a fifth continuation is malformed.
pub const VARINT_BYTES_MAX: usize = 4;
/// The packet-type-and-flags byte plus the longest remaining length.
pub const FIXED_HEADER_BYTES_MAX: usize = 1 + VARINT_BYTES_MAX;
/// The largest packet any MQTT peer can send, fixed header included. A
/// `packet_bytes_max` above this accepts every packet.
pub const PACKET_BYTES_MAX: usize = FIXED_HEADER_BYTES_MAX + REMAINING_LENGTH_MAX;

// Four groups of seven bits are exactly the spec's maximum, so the varint
// reader's overflow check and the constant cannot drift apart.
const _: () = assert!(VARINT_MAX == (1 << (7 * VARINT_BYTES_MAX)) - 1);
// v5 carries Maximum Packet Size as a u32: every packet size must fit one.
const _: () = assert!(PACKET_BYTES_MAX <= u32::MAX as usize);

/// The fourteen control packet types (fifteen in v5, which adds AUTH). The
/// discriminant is the high nibble of the first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    /// v5 only; in 3.1.1 type 15 is reserved, which `decode` enforces.
    Auth = 15,
}

impl PacketType {
    /// The type from the high nibble of the first byte; 0 is reserved.
    pub fn from_nibble(nibble: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match nibble {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }

    /// The flags every packet but PUBLISH must carry in the low nibble
    /// ([MQTT-2.2.2-1]); PUBLISH's flags are DUP, QoS and RETAIN instead.
    pub(crate) fn fixed_flags(self) -> Option<u8> {
        match self {
            PacketType::Publish => None,
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }
}

/// A complete fixed header: what `check` learned from the first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedHeader {
    pub packet_type: PacketType,
    /// The low nibble of the first byte (validated for every type but PUBLISH).
    pub flags: u8,
    /// 2 to 5: the first byte plus the remaining length's own bytes.
    pub header_bytes: usize,
    /// The remaining length: bytes after the fixed header.
    pub remaining_bytes: usize,
}

impl FixedHeader {
    /// The whole packet's size on the wire.
    pub fn packet_bytes(&self) -> usize {
        self.header_bytes + self.remaining_bytes
    }
}

/// What `check` found at the head of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole packet is buffered; decoding it consumes `packet_bytes()`.
    Complete(FixedHeader),
    /// At least this many more bytes must arrive before anything can be
    /// decoded. A lower bound: the fixed header may still be incomplete.
    Incomplete { bytes_missing: usize },
}

/// Reads the fixed header at the start of `buf` without consuming anything.
///
/// Fails as soon as the bytes seen so far prove the packet malformed (reserved
/// type, wrong flags, a five-byte length) or bigger than `packet_bytes_max`,
/// so the caller never buffers such a packet's body.
pub fn check(buf: &[u8], packet_bytes_max: usize) -> Result<Frame, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(Frame::Incomplete { bytes_missing: 2 });
    };
    let packet_type =
        PacketType::from_nibble(first >> 4).ok_or(DecodeError::ReservedPacketType(first >> 4))?;
    let flags = first & 0x0F;
    if packet_type
        .fixed_flags()
        .is_some_and(|expected| flags != expected)
    {
        return Err(DecodeError::InvalidHeaderFlags {
            packet: packet_type,
            flags,
        });
    }

    let mut value: usize = 0;
    for i in 0..VARINT_BYTES_MAX {
        let Some(&byte) = buf.get(1 + i) else {
            // Bytes 1..=i all had the continuation bit set, so at least one
            // more byte follows and, encodings being minimal, it is non-zero:
            // the length is at least value + 128^i. Reject now if even that
            // is too much, before the peer sends the rest of the header.
            let remaining_min = if i == 0 { 0 } else { value + (1 << (7 * i)) };
            let packet_bytes_min = 1 + (i + 1) + remaining_min;
            if packet_bytes_min > packet_bytes_max {
                return Err(DecodeError::PacketTooLarge {
                    bytes: packet_bytes_min,
                    max: packet_bytes_max,
                });
            }
            return Ok(Frame::Incomplete {
                bytes_missing: 1 + i + 1 - buf.len() + remaining_min,
            });
        };
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 != 0 {
            continue;
        }
        // [MQTT-1.5.5-1] asks for the minimum number of bytes; a trailing
        // zero group is a second spelling of the same length, and accepting
        // it would let `encode(decode(x)) != x`.
        if byte == 0 && i > 0 {
            return Err(DecodeError::MalformedRemainingLength);
        }
        let header_bytes = 1 + i + 1;
        let packet_bytes = header_bytes + value;
        if packet_bytes > packet_bytes_max {
            return Err(DecodeError::PacketTooLarge {
                bytes: packet_bytes,
                max: packet_bytes_max,
            });
        }
        if buf.len() < packet_bytes {
            return Ok(Frame::Incomplete {
                bytes_missing: packet_bytes - buf.len(),
            });
        }
        return Ok(Frame::Complete(FixedHeader {
            packet_type,
            flags,
            header_bytes,
            remaining_bytes: value,
        }));
    }
    Err(DecodeError::MalformedRemainingLength)
}

/// Bytes `value` takes as a Variable Byte Integer. `value` must be at most
/// `VARINT_MAX`; callers check that first.
pub(crate) fn varint_bytes(value: usize) -> usize {
    debug_assert!(value <= REMAINING_LENGTH_MAX);
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends `value` as a Variable Byte Integer (minimal encoding).
pub(crate) fn put_varint(out: &mut bytes::BytesMut, value: usize) {
    debug_assert!(value <= REMAINING_LENGTH_MAX);
    let mut rest = value;
    loop {
        let mut byte = (rest & 0x7F) as u8;
        rest >>= 7;
        if rest > 0 {
            byte |= 0x80;
        }
        out.extend_from_slice(&[byte]);
        if rest == 0 {
            return;
        }
    }
}
