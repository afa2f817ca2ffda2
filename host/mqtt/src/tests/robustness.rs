//! The decoder against hostile input: it never panics, never buffers past
//! `packet_bytes_max`, waits quietly for incomplete packets, and names each
//! kind of malformation with the reason code the broker will send.

use proptest::prelude::*;

use super::strategies as s;
use super::{check_err, encode_to_vec, unhex};
use crate::Version::{V3_1_1, V5};
use crate::framing::{Frame, check};
use crate::*;

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(V3_1_1), Just(V5)]
}

/// Decodes until the buffer runs dry or fails, checking that every decoded
/// packet consumed bytes and re-encodes: whatever `decode` accepts, `encode`
/// must accept too, and read back to the same value.
fn decode_all(buf: &mut BytesMut, version: Version, packet_bytes_max: usize) {
    loop {
        let before = buf.clone();
        match decode(buf, version, packet_bytes_max) {
            Ok(Some(packet)) => {
                assert!(
                    buf.len() + 2 <= before.len(),
                    "a packet is at least two bytes"
                );
                let version = match &packet {
                    Packet::Connect(c) => c.version,
                    _ => version,
                };
                let bytes =
                    encode_to_vec(&packet, version).expect("a decoded packet must re-encode");
                let mut again = BytesMut::from(&bytes[..]);
                assert_eq!(
                    decode(&mut again, version, PACKET_BYTES_MAX),
                    Ok(Some(packet))
                );
            }
            Ok(None) => {
                assert_eq!(buf, &before, "Ok(None) leaves the buffer untouched");
                return;
            }
            Err(e) => {
                let _ = e.reason_code();
                return;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), version in version(), max in 0usize..1024) {
        decode_all(&mut BytesMut::from(&bytes[..]), version, max);
    }

    /// Random bytes rarely get past the fixed header; a valid packet with
    /// one bit flipped reaches every field parser.
    #[test]
    fn bit_flips_never_panic((version, packet) in version().prop_flat_map(|v| (Just(v), s::packet(v))), flip in any::<(usize, u8)>()) {
        let mut bytes = encode_to_vec(&packet, version).unwrap();
        let at = flip.0 % bytes.len();
        bytes[at] ^= 1 << (flip.1 % 8);
        decode_all(&mut BytesMut::from(&bytes[..]), version, PACKET_BYTES_MAX);
    }

    /// A valid packet cut short anywhere, followed by garbage of the right
    /// length: the fields overrun the remaining length instead of the buffer.
    #[test]
    fn shortened_remaining_length_never_panics((version, packet) in version().prop_flat_map(|v| (Just(v), s::packet(v))), cut in any::<usize>()) {
        let bytes = encode_to_vec(&packet, version).unwrap();
        let header = match check(&bytes, PACKET_BYTES_MAX).unwrap() {
            Frame::Complete(header) => header,
            Frame::Incomplete { .. } => unreachable!(),
        };
        let remaining = cut % (header.remaining_bytes + 1);
        let mut short = vec![bytes[0]];
        let mut len = BytesMut::new();
        crate::framing::put_varint(&mut len, remaining);
        short.extend_from_slice(&len);
        short.extend_from_slice(&bytes[header.header_bytes..header.header_bytes + remaining]);
        decode_all(&mut BytesMut::from(&short[..]), version, PACKET_BYTES_MAX);
    }
}

/// The fixed header alone proves the packet too big: nothing more is read or
/// buffered, and the buffer holds just the five header bytes.
#[test]
fn oversize_rejected_from_fixed_header() {
    let mut buf = unhex("30 ff ff ff 7f");
    assert_eq!(
        decode(&mut buf, V5, 1 << 20),
        Err(DecodeError::PacketTooLarge {
            bytes: PACKET_BYTES_MAX,
            max: 1 << 20
        })
    );
    assert_eq!(buf.len(), 5);
    assert_eq!(
        decode(&mut buf, V5, 1 << 20).unwrap_err().reason_code(),
        ReasonCode::PACKET_TOO_LARGE
    );
}

/// Even an unfinished remaining length is enough when its first bytes
/// already imply more than the limit.
#[test]
fn oversize_rejected_before_the_length_is_complete() {
    // One continuation byte: at least 128 more bytes, 131 in all.
    let mut buf = unhex("30 80");
    assert_eq!(
        decode(&mut buf, V5, 130),
        Err(DecodeError::PacketTooLarge {
            bytes: 131,
            max: 130
        })
    );
    assert_eq!(decode(&mut buf, V5, 131), Ok(None));
    // Three continuation bytes: at least 2^21 + 128^3 = 2 MiB + 5 header bytes.
    let mut buf = unhex("30 ff ff ff");
    assert_eq!(
        decode(&mut buf, V5, 1 << 20),
        Err(DecodeError::PacketTooLarge {
            bytes: 5 + (1 << 21) - 1 + (1 << 21),
            max: 1 << 20
        })
    );
}

#[test]
fn incomplete_input_is_none_and_untouched() {
    for input in [
        "",
        "30",
        "30 80",
        "30 05 00 03 61",
        "82 08 00 0a 00 03 61 2f 62",
    ] {
        for version in [V3_1_1, V5] {
            let mut buf = unhex(input);
            let before = buf.clone();
            assert_eq!(
                decode(&mut buf, version, PACKET_BYTES_MAX),
                Ok(None),
                "{input:?}"
            );
            assert_eq!(buf, before);
        }
    }
    assert_eq!(
        check(&unhex("30 05 00 03 61"), 100),
        Ok(Frame::Incomplete { bytes_missing: 2 })
    );
    assert_eq!(check(&[], 100), Ok(Frame::Incomplete { bytes_missing: 2 }));
}

#[test]
fn fixed_header_errors() {
    check_err(
        V5,
        "30 ff ff ff ff 01",
        "MalformedRemainingLength -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "30 80 00",
        "MalformedRemainingLength -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "00 00",
        "ReservedPacketType(0) -> 0x81 Malformed Packet",
    );
    check_err(
        V3_1_1,
        "f0 00",
        "ReservedPacketType(15) -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "60 02 00 01",
        "InvalidHeaderFlags { packet: PubRel, flags: 0 } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "c1 00",
        "InvalidHeaderFlags { packet: PingReq, flags: 1 } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "36 05 00 01 74 00 01",
        "InvalidQoS { packet: Publish, qos: 3 } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "38 04 00 01 74 00",
        "InvalidHeaderFlags { packet: Publish, flags: 8 } -> 0x81 Malformed Packet",
    );
}

#[test]
fn field_errors() {
    check_err(
        V3_1_1,
        "30 03 00 01 ff",
        "InvalidUtf8 { packet: Publish } -> 0x81 Malformed Packet",
    );
    check_err(
        V3_1_1,
        "30 04 00 02 ed a0",
        "InvalidUtf8 { packet: Publish } -> 0x81 Malformed Packet",
    );
    check_err(
        V3_1_1,
        "30 05 00 03 ed a0 80",
        "InvalidUtf8 { packet: Publish } -> 0x81 Malformed Packet",
    );
    check_err(
        V3_1_1,
        "30 03 00 01 00",
        "NullCharacter { packet: Publish } -> 0x81 Malformed Packet",
    );
    check_err(
        V3_1_1,
        "32 05 00 01 74 00 00",
        "ZeroPacketId { packet: Publish } -> 0x82 Protocol Error",
    );
    check_err(
        V3_1_1,
        "40 02 00 00",
        "ZeroPacketId { packet: PubAck } -> 0x82 Protocol Error",
    );
    check_err(
        V3_1_1,
        "32 04 00 01 74 00",
        "UnexpectedEnd { packet: Publish } -> 0x81 Malformed Packet",
    );
    check_err(
        V3_1_1,
        "40 03 00 01 00",
        "TrailingBytes { packet: PubAck, bytes: 1 } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "c0 01 00",
        "TrailingBytes { packet: PingReq, bytes: 1 } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "40 03 00 01 03",
        "InvalidReasonCode { packet: PubAck, code: 3 } -> 0x82 Protocol Error",
    );
    check_err(
        V5,
        "40 03 00 01 92",
        "InvalidReasonCode { packet: PubAck, code: 146 } -> 0x82 Protocol Error",
    );
    check_err(
        V3_1_1,
        "20 02 00 06",
        "InvalidReasonCode { packet: ConnAck, code: 6 } -> 0x82 Protocol Error",
    );
    check_err(
        V3_1_1,
        "20 02 02 00",
        "InvalidConnAckFlags { flags: 2 } -> 0x81 Malformed Packet",
    );
    check_err(
        V3_1_1,
        "90 03 00 01 03",
        "InvalidReasonCode { packet: SubAck, code: 3 } -> 0x82 Protocol Error",
    );
    check_err(
        V5,
        "b0 03 00 01 00",
        "EmptyPayload { packet: UnsubAck } -> 0x82 Protocol Error",
    );
}

#[test]
fn connect_errors() {
    // MQTT 3.1 ("MQIsdp", level 3) is refused by level, so the session can
    // answer with 3.1.1's "unacceptable protocol version".
    check_err(
        V5,
        "10 0e 00 06 4d 51 49 73 64 70 03 02 00 3c 00 00",
        "UnsupportedProtocolLevel { level: 3 } -> 0x84 Unsupported Protocol Version",
    );
    check_err(
        V5,
        "10 0c 00 04 4d 51 54 54 06 02 00 3c 00 00",
        "UnsupportedProtocolLevel { level: 6 } -> 0x84 Unsupported Protocol Version",
    );
    check_err(
        V5,
        "10 0c 00 04 4d 51 54 58 04 02 00 3c 00 00",
        "InvalidProtocolName { name: \"MQTX\" } -> 0x84 Unsupported Protocol Version",
    );
    check_err(
        V5,
        "10 0c 00 04 4d 51 54 54 04 03 00 3c 00 00",
        "InvalidConnectFlags { flags: 3 } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "10 0c 00 04 4d 51 54 54 04 0a 00 3c 00 00",
        "InvalidConnectFlags { flags: 10 } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "10 0c 00 04 4d 51 54 54 04 1e 00 3c 00 00",
        "InvalidConnectFlags { flags: 30 } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "10 0f 00 04 4d 51 54 54 04 42 00 3c 00 00 00 01 70",
        "PasswordWithoutUsername -> 0x81 Malformed Packet",
    );
    // v5 allows a password alone.
    check_err(
        V5,
        "10 10 00 04 4d 51 54 54 05 42 00 3c 00 00 00 00 01 70",
        "Ok(Some(Connect(Connect { version: V5, client_id: \"\", clean_start: true, keep_alive_s: 60, username: None, password: Some(b\"p\"), will: None, properties: ConnectProperties { session_expiry_interval_s: None, receive_maximum: None, maximum_packet_size: None, topic_alias_maximum: None, request_response_information: None, request_problem_information: None, user_properties: [], authentication_method: None, authentication_data: None } })))",
    );
}

#[test]
fn property_errors() {
    check_err(
        V5,
        "30 0a 00 01 74 06 23 00 01 23 00 02",
        "DuplicateProperty { packet: Publish, id: 35 } -> 0x82 Protocol Error",
    );
    check_err(
        V5,
        "30 09 00 01 74 05 11 00 00 00 01",
        "PropertyNotAllowed { packet: Publish, id: 17 } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "30 06 00 01 74 02 80 01",
        "PropertyNotAllowed { packet: Publish, id: 128 } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "30 06 00 01 74 02 01 02",
        "InvalidPropertyValue { packet: Publish, id: 1, value: 2 } -> 0x82 Protocol Error",
    );
    check_err(
        V5,
        "30 07 00 01 74 03 23 00 00",
        "InvalidPropertyValue { packet: Publish, id: 35, value: 0 } -> 0x82 Protocol Error",
    );
    check_err(
        V5,
        "30 06 00 01 74 02 0b 00",
        "InvalidPropertyValue { packet: Publish, id: 11, value: 0 } -> 0x82 Protocol Error",
    );
    check_err(
        V5,
        "30 07 00 01 74 03 0b 80 00",
        "MalformedVarInt { packet: Publish } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "30 06 00 01 74 05 01 01",
        "UnexpectedEnd { packet: Publish } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "20 06 00 00 03 24 02 00",
        "InvalidPropertyValue { packet: ConnAck, id: 36, value: 2 } -> 0x82 Protocol Error",
    );
    check_err(
        V5,
        "20 06 00 00 03 21 00 00",
        "InvalidPropertyValue { packet: ConnAck, id: 33, value: 0 } -> 0x82 Protocol Error",
    );
    check_err(
        V5,
        "f0 05 18 03 16 00 00",
        "AuthDataWithoutMethod { packet: Auth } -> 0x82 Protocol Error",
    );
}

#[test]
fn subscribe_errors() {
    check_err(
        V5,
        "82 03 00 01 00",
        "EmptyPayload { packet: Subscribe } -> 0x82 Protocol Error",
    );
    check_err(
        V3_1_1,
        "82 02 00 01",
        "EmptyPayload { packet: Subscribe } -> 0x82 Protocol Error",
    );
    check_err(
        V3_1_1,
        "82 06 00 01 00 01 74 04",
        "InvalidSubscriptionOptions { options: 4 } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "82 07 00 01 00 00 01 74 40",
        "InvalidSubscriptionOptions { options: 64 } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "82 07 00 01 00 00 01 74 30",
        "InvalidRetainHandling -> 0x82 Protocol Error",
    );
    check_err(
        V5,
        "82 07 00 01 00 00 01 74 03",
        "InvalidQoS { packet: Subscribe, qos: 3 } -> 0x81 Malformed Packet",
    );
    check_err(
        V5,
        "a2 03 00 01 00",
        "EmptyPayload { packet: Unsubscribe } -> 0x82 Protocol Error",
    );
}
