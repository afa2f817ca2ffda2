//! The record batch: the unit the log writes, checksums and reads.
//!
//! One append becomes one batch, so one CRC covers everything a producer was
//! acknowledged for, and a torn write damages at most the batch being written.
//! This module is pure (no I/O) so that the decoder can be fuzzed, and it must
//! never panic on arbitrary bytes: everything it reads is untrusted.
//!
//! # Format (version 1), all integers little-endian
//!
//! ```text
//! offset size field
//!      0    1 magic      format version byte, 0x5C for version 1
//!      1    4 crc        CRC32C (Castagnoli) of bytes [5, length)
//!      5    4 length     total bytes of the batch, header included
//!      9    8 base_offset       offset of the first record
//!     17    4 record_count      >= 1; offsets are base_offset..base_offset+count
//!     21    8 first_timestamp_ms timestamp of the first record
//!     29    8 max_timestamp_ms   largest timestamp of any record
//!     37    . records, back to back, each:
//!             varint zigzag(timestamp_ms - first_timestamp_ms)  (wrapping)
//!             varint key: 0 = no key, n + 1 = key of n bytes
//!             varint value length
//!             key bytes, value bytes
//! ```
//!
//! The magic byte sits outside the CRC so a reader can reject a non-batch
//! without hashing anything; the length is inside it, so a flipped length bit
//! is caught too (after the length has been bounded by `batch_bytes_max`, which
//! happens before anything is allocated or hashed). Timestamps are stored as
//! wrapping deltas so that any pair of `i64` timestamps round-trips exactly.

use std::ops::Range;

use bytes::Bytes;

use crate::varint;
use crate::{Record, StoredRecord};

/// Version-1 magic byte; a new format gets a new byte, never a reinterpretation.
pub const MAGIC_V1: u8 = 0x5C;
/// Bytes before the first record.
pub const BATCH_HEADER_BYTES: usize = 37;
/// The smallest possible record (three one-byte varints, empty value): used to
/// bound `record_count` by the batch length before allocating.
pub const RECORD_BYTES_MIN: usize = 3;

const CRC_RANGE_START: usize = 5;

/// The fixed-size part of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub crc: u32,
    pub length: u32,
    pub base_offset: u64,
    pub record_count: u32,
    pub first_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
}

impl BatchHeader {
    /// One past the last offset in the batch.
    pub fn end_offset(&self) -> u64 {
        // decode_header checked that this cannot overflow.
        self.base_offset + u64::from(self.record_count)
    }
}

/// A decoded, CRC-verified batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub header: BatchHeader,
    pub records: Vec<StoredRecord>,
}

/// Why bytes are not a valid batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("incomplete batch: have {have} bytes, need {need}")]
    Incomplete { have: usize, need: usize },
    #[error("bad magic byte {found:#04x}")]
    BadMagic { found: u8 },
    #[error("batch length {length} outside {min}..={max}")]
    LengthOutOfBounds { length: u64, min: u64, max: u64 },
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("malformed batch: {reason}")]
    Malformed { reason: &'static str },
}

fn malformed(reason: &'static str) -> DecodeError {
    DecodeError::Malformed { reason }
}

/// Exact encoded size of `records` as one batch. `u64` because a caller may
/// hand in more than 4 GiB, which must become `BatchTooLarge`, not a wrap.
pub fn encoded_len(records: &[Record]) -> u64 {
    let first = records.first().map_or(0, |r| r.timestamp_ms);
    let mut total = BATCH_HEADER_BYTES as u64;
    for r in records {
        let key_tag = r.key.as_ref().map_or(0, |k| k.len() as u64 + 1);
        total += (varint::len_u64(varint::zigzag(r.timestamp_ms.wrapping_sub(first)))
            + varint::len_u64(key_tag)
            + varint::len_u64(r.value.len() as u64)) as u64;
        total += r.key.as_ref().map_or(0, |k| k.len() as u64) + r.value.len() as u64;
    }
    total
}

/// Encodes `records` as one batch starting at `base_offset`, appending to `out`.
///
/// The caller must have checked `records` is non-empty and
/// [`encoded_len`] fits its `batch_bytes_max` (at most `u32::MAX`); breaking
/// that is a bug in this crate, hence assertions rather than errors.
pub fn encode(base_offset: u64, records: &[Record], out: &mut Vec<u8>) -> BatchHeader {
    assert!(!records.is_empty(), "encode of an empty batch");
    let length = encoded_len(records);
    let length = u32::try_from(length).expect("batch length checked against batch_bytes_max");
    let record_count = u32::try_from(records.len()).expect("record count bounded by length");
    let first = records[0].timestamp_ms;
    let max = records
        .iter()
        .map(|r| r.timestamp_ms)
        .max()
        .unwrap_or(first);
    let start = out.len();
    out.reserve(length as usize);
    out.push(MAGIC_V1);
    out.extend_from_slice(&[0; 4]); // crc, filled below
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&base_offset.to_le_bytes());
    out.extend_from_slice(&record_count.to_le_bytes());
    out.extend_from_slice(&first.to_le_bytes());
    out.extend_from_slice(&max.to_le_bytes());
    for r in records {
        varint::put_u64(out, varint::zigzag(r.timestamp_ms.wrapping_sub(first)));
        varint::put_u64(out, r.key.as_ref().map_or(0, |k| k.len() as u64 + 1));
        varint::put_u64(out, r.value.len() as u64);
        if let Some(k) = &r.key {
            out.extend_from_slice(k);
        }
        out.extend_from_slice(&r.value);
    }
    assert_eq!(
        out.len() - start,
        length as usize,
        "encoded_len disagrees with encode"
    );
    let crc = crc32c::crc32c(&out[start + CRC_RANGE_START..]);
    out[start + 1..start + 5].copy_from_slice(&crc.to_le_bytes());
    BatchHeader {
        crc,
        length,
        base_offset,
        record_count,
        first_timestamp_ms: first,
        max_timestamp_ms: max,
    }
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

/// Parses and sanity-checks the header at the front of `buf` without hashing.
///
/// Every field that later drives an allocation or a loop is bounded here:
/// `length` by `batch_bytes_max`, `record_count` by what `length` can hold.
pub fn decode_header(buf: &[u8], batch_bytes_max: u32) -> Result<BatchHeader, DecodeError> {
    if buf.len() < BATCH_HEADER_BYTES {
        return Err(DecodeError::Incomplete {
            have: buf.len(),
            need: BATCH_HEADER_BYTES,
        });
    }
    if buf[0] != MAGIC_V1 {
        return Err(DecodeError::BadMagic { found: buf[0] });
    }
    let header = BatchHeader {
        crc: u32_at(buf, 1),
        length: u32_at(buf, 5),
        base_offset: u64_at(buf, 9),
        record_count: u32_at(buf, 17),
        first_timestamp_ms: u64_at(buf, 21) as i64,
        max_timestamp_ms: u64_at(buf, 29) as i64,
    };
    let min = (BATCH_HEADER_BYTES + RECORD_BYTES_MIN) as u64;
    let length = u64::from(header.length);
    if length < min || length > u64::from(batch_bytes_max) {
        return Err(DecodeError::LengthOutOfBounds {
            length,
            min,
            max: u64::from(batch_bytes_max),
        });
    }
    let count_max = (header.length as usize - BATCH_HEADER_BYTES) / RECORD_BYTES_MIN;
    if header.record_count == 0 || header.record_count as usize > count_max {
        return Err(malformed("record count out of bounds for the batch length"));
    }
    if header
        .base_offset
        .checked_add(u64::from(header.record_count))
        .is_none()
    {
        return Err(malformed("offsets overflow u64"));
    }
    if header.max_timestamp_ms < header.first_timestamp_ms {
        return Err(malformed("max timestamp below first timestamp"));
    }
    Ok(header)
}

/// Checks the CRC of the batch at the front of `buf` (which must hold at least
/// `header.length` bytes, else `Incomplete`).
pub fn verify_crc(buf: &[u8], header: &BatchHeader) -> Result<(), DecodeError> {
    let length = header.length as usize;
    if buf.len() < length {
        return Err(DecodeError::Incomplete {
            have: buf.len(),
            need: length,
        });
    }
    let computed = crc32c::crc32c(&buf[CRC_RANGE_START..length]);
    if computed != header.crc {
        return Err(DecodeError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(())
}

/// Decodes the batch at the front of `buf` (bytes past it are ignored),
/// verifying its CRC. The entry point for fuzzing: never panics.
pub fn decode(buf: &[u8], batch_bytes_max: u32) -> Result<Batch, DecodeError> {
    let header = decode_header(buf, batch_bytes_max)?;
    verify_crc(buf, &header)?;
    // Copy only the batch itself, then hand out zero-copy slices of it.
    decode_records(
        Bytes::copy_from_slice(&buf[..header.length as usize]),
        header,
    )
}

/// Like [`decode`], but slices keys and values out of `buf` without copying.
pub fn decode_bytes(buf: Bytes, batch_bytes_max: u32) -> Result<Batch, DecodeError> {
    let header = decode_header(&buf, batch_bytes_max)?;
    verify_crc(&buf, &header)?;
    decode_records(buf.slice(..header.length as usize), header)
}

/// Checks a whole batch (header bounds, CRC, record structure) without
/// allocating: recovery scans use it on every batch of a segment.
pub fn validate(buf: &[u8], batch_bytes_max: u32) -> Result<BatchHeader, DecodeError> {
    let header = decode_header(buf, batch_bytes_max)?;
    verify_crc(buf, &header)?;
    walk_records(&buf[..header.length as usize], &header, |_, _, _, _| {})?;
    Ok(header)
}

fn decode_records(buf: Bytes, header: BatchHeader) -> Result<Batch, DecodeError> {
    let mut records = Vec::with_capacity(header.record_count as usize);
    walk_records(&buf, &header, |offset, timestamp_ms, key, value| {
        records.push(StoredRecord {
            offset,
            timestamp_ms,
            key: key.map(|k| buf.slice(k)),
            value: buf.slice(value),
        });
    })?;
    Ok(Batch { header, records })
}

/// Walks the records of a CRC-checked batch, handing each one's offset,
/// timestamp and the byte ranges of its key and value to `each`. Every length
/// is checked against what remains of the batch before it is used.
fn walk_records(
    buf: &[u8],
    header: &BatchHeader,
    mut each: impl FnMut(u64, i64, Option<Range<usize>>, Range<usize>),
) -> Result<(), DecodeError> {
    debug_assert_eq!(buf.len(), header.length as usize);
    let mut at = BATCH_HEADER_BYTES;
    let mut max_seen = i64::MIN;
    for i in 0..header.record_count {
        let mut next_varint = |what: &'static str| -> Result<u64, DecodeError> {
            let (v, n) =
                varint::get_u64(&buf[at..]).ok_or(DecodeError::Malformed { reason: what })?;
            at += n;
            Ok(v)
        };
        let delta = varint::unzigzag(next_varint("bad timestamp varint")?);
        let key_tag = next_varint("bad key varint")?;
        let value_len = next_varint("bad value length varint")?;
        let remaining = (buf.len() - at) as u64;
        let key_len = key_tag.saturating_sub(1);
        if key_len > remaining || value_len > remaining - key_len {
            return Err(malformed("record length runs past the batch"));
        }
        let key = if key_tag == 0 {
            None
        } else {
            let k = at..at + key_len as usize;
            at += key_len as usize;
            Some(k)
        };
        let value = at..at + value_len as usize;
        at += value_len as usize;
        let timestamp_ms = header.first_timestamp_ms.wrapping_add(delta);
        if i == 0 && timestamp_ms != header.first_timestamp_ms {
            return Err(malformed("first record timestamp disagrees with header"));
        }
        max_seen = max_seen.max(timestamp_ms);
        each(header.base_offset + u64::from(i), timestamp_ms, key, value);
    }
    if at != buf.len() {
        return Err(malformed("trailing bytes after the last record"));
    }
    if max_seen != header.max_timestamp_ms {
        return Err(malformed("max timestamp disagrees with records"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: u32 = 1 << 20;

    fn rec(ts: i64, key: Option<&[u8]>, value: &[u8]) -> Record {
        Record {
            timestamp_ms: ts,
            key: key.map(Bytes::copy_from_slice),
            value: Bytes::copy_from_slice(value),
        }
    }

    #[test]
    fn round_trip() {
        let records = vec![
            rec(1_000, Some(b"k1"), b"hello"),
            rec(999, None, b""),
            rec(5_000, Some(b""), b"world"),
        ];
        let mut out = Vec::new();
        let header = encode(42, &records, &mut out);
        assert_eq!(out.len() as u64, encoded_len(&records));
        assert_eq!(header.max_timestamp_ms, 5_000);
        let batch = decode(&out, MAX).unwrap();
        assert_eq!(batch.header, header);
        assert_eq!(batch.header.end_offset(), 45);
        for (i, (got, want)) in batch.records.iter().zip(&records).enumerate() {
            assert_eq!(got.offset, 42 + i as u64);
            assert_eq!(got.timestamp_ms, want.timestamp_ms);
            assert_eq!(got.key, want.key);
            assert_eq!(got.value, want.value);
        }
        assert_eq!(decode_bytes(Bytes::from(out), MAX).unwrap(), batch);
    }

    #[test]
    fn extreme_timestamps_round_trip() {
        let records = vec![rec(i64::MAX, None, b"a"), rec(i64::MIN, None, b"b")];
        let mut out = Vec::new();
        encode(0, &records, &mut out);
        let batch = decode(&out, MAX).unwrap();
        assert_eq!(batch.records[1].timestamp_ms, i64::MIN);
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let mut out = Vec::new();
        encode(7, &[rec(1, Some(b"key"), b"value")], &mut out);
        for byte in 0..out.len() {
            for bit in 0..8 {
                let mut bad = out.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    decode(&bad, MAX).is_err(),
                    "flip of byte {byte} bit {bit} accepted"
                );
            }
        }
    }

    #[test]
    fn length_beyond_max_rejected_before_reading_body() {
        let mut out = Vec::new();
        encode(0, &[rec(1, None, &[0u8; 200])], &mut out);
        // Only the header is present, yet the error is about the length, not
        // about missing bytes: the bound is applied before anything else.
        assert!(matches!(
            decode(&out[..BATCH_HEADER_BYTES], 100),
            Err(DecodeError::LengthOutOfBounds { .. })
        ));
        assert!(matches!(
            decode(&out[..out.len() - 1], MAX),
            Err(DecodeError::Incomplete { .. })
        ));
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            any::<i64>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            proptest::collection::vec(any::<u8>(), 0..50),
        )
            .prop_map(|(ts, k, v)| Record {
                timestamp_ms: ts,
                key: k.map(Bytes::from),
                value: Bytes::from(v),
            })
    }

    proptest! {
        #[test]
        fn prop_round_trip(base in 0u64..u64::MAX / 2, records in proptest::collection::vec(arb_record(), 1..20)) {
            let mut out = Vec::new();
            encode(base, &records, &mut out);
            let batch = decode(&out, MAX).unwrap();
            prop_assert_eq!(batch.records.len(), records.len());
            for (got, want) in batch.records.iter().zip(&records) {
                prop_assert_eq!(got.timestamp_ms, want.timestamp_ms);
                prop_assert_eq!(&got.key, &want.key);
                prop_assert_eq!(&got.value, &want.value);
            }
        }

        #[test]
        fn prop_decoder_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300), max in 0u32..1000) {
            let _ = decode(&bytes, max);
        }

        #[test]
        fn prop_decoder_never_panics_on_mangled_batches(
            records in proptest::collection::vec(arb_record(), 1..6),
            cut in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            fix_crc in any::<bool>(),
        ) {
            let mut out = Vec::new();
            encode(3, &records, &mut out);
            for (at, x) in flips {
                let i = at.index(out.len());
                out[i] ^= x;
            }
            if fix_crc && out.len() >= BATCH_HEADER_BYTES {
                // Re-seal the CRC so the record parser itself sees garbage.
                let crc = crc32c::crc32c(&out[CRC_RANGE_START..]);
                out[1..5].copy_from_slice(&crc.to_le_bytes());
            }
            let truncated = &out[..cut.index(out.len() + 1)];
            let _ = decode(truncated, MAX);
            let _ = decode(&out, MAX);
        }
    }
}
