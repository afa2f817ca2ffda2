//! The codec's tests, beside the code they test. Every test goes through the
//! helpers here (`roundtrip`, `check`, `check_err`), so an API change touches
//! the helpers and not the hundred cases.

mod connection;
mod encode_errors;
mod invariants;
mod known_bytes;
mod robustness;
mod roundtrip;
mod strategies;

use crate::{
    BytesMut, DecodeError, EncodeError, PACKET_BYTES_MAX, Packet, Version, decode, encode,
};

/// `"c0 00"` style: lower-case bytes separated by spaces, which is how the
/// spec's examples read and how a mismatch is easiest to compare by eye.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn unhex(text: &str) -> BytesMut {
    let bytes: Vec<u8> = text
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    BytesMut::from(&bytes[..])
}

pub fn encode_to_vec(packet: &Packet, version: Version) -> Result<Vec<u8>, EncodeError> {
    let mut out = BytesMut::new();
    encode(packet, version, PACKET_BYTES_MAX, &mut out)?;
    Ok(out.to_vec())
}

/// Expect-style known bytes: `packet` encodes to exactly `expect` and
/// `expect` decodes to exactly `packet`. On a mismatch the message shows the
/// actual bytes in the same format, ready to paste.
#[track_caller]
pub fn check(version: Version, packet: Packet, expect: &str) {
    let actual = hex(&encode_to_vec(&packet, version).unwrap());
    assert_eq!(actual, expect, "\nactual bytes: \"{actual}\"");
    let mut buf = unhex(expect);
    assert_eq!(
        decode(&mut buf, version, PACKET_BYTES_MAX),
        Ok(Some(packet))
    );
    assert!(buf.is_empty());
}

/// Expect-style decode failure: `input` fails as `expect` says, written as
/// `"{error:?} -> {reason code:?}"` so that each case also pins the reason
/// code the broker would send.
#[track_caller]
pub fn check_err(version: Version, input: &str, expect: &str) {
    let mut buf = unhex(input);
    let actual = match decode(&mut buf, version, PACKET_BYTES_MAX) {
        Err(e) => format!("{e:?} -> {:?}", e.reason_code()),
        Ok(p) => format!("Ok({p:?})"),
    };
    assert_eq!(actual, expect, "\nactual: \"{actual}\"");
}

/// Encodes `packet` and checks everything a reader of the bytes relies on:
/// it decodes to an equal packet and consumes exactly its bytes; every
/// strict prefix is `Ok(None)` and leaves the buffer as it was; a limit one
/// byte below its size refuses it on both sides; decoded values re-encode
/// to the same bytes.
#[track_caller]
pub fn roundtrip(packet: &Packet, version: Version) {
    let bytes = encode_to_vec(packet, version).unwrap();

    for cut in 0..bytes.len() {
        let mut part = BytesMut::from(&bytes[..cut]);
        assert_eq!(
            decode(&mut part, version, PACKET_BYTES_MAX),
            Ok(None),
            "prefix of {cut} bytes"
        );
        assert_eq!(&part[..], &bytes[..cut], "a prefix must be left untouched");
    }

    // Two packets back to back: the first decode takes exactly one.
    let mut buf = BytesMut::from(&bytes[..]);
    buf.extend_from_slice(&bytes);
    assert_eq!(
        decode(&mut buf, version, bytes.len()).as_ref(),
        Ok(&Some(packet.clone()))
    );
    assert_eq!(&buf[..], &bytes[..]);
    let again = decode(&mut buf, version, bytes.len()).unwrap().unwrap();
    assert!(buf.is_empty());
    assert_eq!(
        encode_to_vec(&again, version).unwrap(),
        bytes,
        "canonical encoding"
    );

    let mut too_small = BytesMut::from(&bytes[..]);
    assert_eq!(
        decode(&mut too_small, version, bytes.len() - 1),
        Err(DecodeError::PacketTooLarge {
            bytes: bytes.len(),
            max: bytes.len() - 1
        })
    );
    let mut out = BytesMut::from(&b"kept"[..]);
    assert_eq!(
        encode(packet, version, bytes.len() - 1, &mut out),
        Err(EncodeError::PacketTooLarge {
            bytes: bytes.len(),
            max: bytes.len() - 1
        })
    );
    assert_eq!(
        &out[..],
        b"kept",
        "a failed encode leaves the output as it was"
    );
}
