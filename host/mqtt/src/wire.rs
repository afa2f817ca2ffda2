//! The data types of MQTT §1.5 (integers, Variable Byte Integers, UTF-8
//! strings, binary data) read from and written to bytes.
//!
//! `Reader` walks one packet body that `framing::check` has already bounded;
//! every read checks what is left, so no input can make it index out of
//! bounds or allocate more than the packet holds. Binary fields are
//! zero-copy slices of the packet. The `put_*` functions check what the wire
//! format can represent and say so with an `EncodeError`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::framing::{VARINT_BYTES_MAX, VARINT_MAX, put_varint};
use crate::{DecodeError, EncodeError, PacketId, PacketType};

/// The longest string or binary field: its length prefix is two bytes.
pub const STRING_BYTES_MAX: usize = u16::MAX as usize;
// A longest string with its length prefix fits in one packet, so "string
// too long" and "packet too large" stay two distinct failures.
const _: () = assert!(2 + STRING_BYTES_MAX <= crate::framing::REMAINING_LENGTH_MAX);

/// A cursor over one packet's body (or a property block inside it). It
/// remembers the packet type so that errors can name it.
pub(crate) struct Reader {
    buf: Bytes,
    pub(crate) packet: PacketType,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, packet: PacketType) -> Reader {
        Reader { buf, packet }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn need(&self, bytes: usize) -> Result<(), DecodeError> {
        if self.buf.len() < bytes {
            return Err(DecodeError::UnexpectedEnd {
                packet: self.packet,
            });
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    /// A Variable Byte Integer: at most four bytes, minimally encoded.
    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..VARINT_BYTES_MAX {
            let byte = self.u8()?;
            value |= u32::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                if byte == 0 && i > 0 {
                    return Err(DecodeError::MalformedVarInt {
                        packet: self.packet,
                    });
                }
                debug_assert!(value <= VARINT_MAX);
                return Ok(value);
            }
        }
        Err(DecodeError::MalformedVarInt {
            packet: self.packet,
        })
    }

    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        PacketId::new(self.u16()?).ok_or(DecodeError::ZeroPacketId {
            packet: self.packet,
        })
    }

    /// The next `bytes` bytes, zero-copy.
    pub(crate) fn take(&mut self, bytes: usize) -> Result<Bytes, DecodeError> {
        self.need(bytes)?;
        Ok(self.buf.split_to(bytes))
    }

    /// A sub-reader over the next `bytes` bytes, for length-prefixed blocks.
    pub(crate) fn sub(&mut self, bytes: usize) -> Result<Reader, DecodeError> {
        Ok(Reader {
            buf: self.take(bytes)?,
            packet: self.packet,
        })
    }

    /// Two-byte length, then that many bytes.
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// A UTF-8 Encoded String: well-formed UTF-8 (which excludes surrogates,
    /// [MQTT-1.5.4-1]) without U+0000 ([MQTT-1.5.4-2]).
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let bytes = self.binary()?;
        let s = std::str::from_utf8(&bytes).map_err(|_| DecodeError::InvalidUtf8 {
            packet: self.packet,
        })?;
        if s.contains('\0') {
            return Err(DecodeError::NullCharacter {
                packet: self.packet,
            });
        }
        Ok(s.to_owned())
    }

    /// Everything left, zero-copy (the PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Fails if anything is left: a packet whose remaining length covers more
    /// than its fields is malformed.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if !self.buf.is_empty() {
            return Err(DecodeError::TrailingBytes {
                packet: self.packet,
                bytes: self.buf.len(),
            });
        }
        Ok(())
    }
}

/// Checks a string for what the wire format and the spec allow.
fn check_string(s: &str) -> Result<(), EncodeError> {
    if s.len() > STRING_BYTES_MAX {
        return Err(EncodeError::StringTooLong { bytes: s.len() });
    }
    if s.contains('\0') {
        return Err(EncodeError::NullCharacter);
    }
    Ok(())
}

pub(crate) fn put_string(out: &mut BytesMut, s: &str) -> Result<(), EncodeError> {
    check_string(s)?;
    out.put_u16(s.len() as u16);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

pub(crate) fn put_binary(out: &mut BytesMut, data: &[u8]) -> Result<(), EncodeError> {
    if data.len() > STRING_BYTES_MAX {
        return Err(EncodeError::BinaryTooLong { bytes: data.len() });
    }
    out.put_u16(data.len() as u16);
    out.extend_from_slice(data);
    Ok(())
}

/// A length-prefixed block (a v5 property list): the varint length of
/// `block`, then `block`.
pub(crate) fn put_block(out: &mut BytesMut, block: &[u8]) -> Result<(), EncodeError> {
    if block.len() > VARINT_MAX as usize {
        return Err(EncodeError::PacketTooLarge {
            bytes: block.len(),
            max: VARINT_MAX as usize,
        });
    }
    put_varint(out, block.len());
    out.extend_from_slice(block);
    Ok(())
}
