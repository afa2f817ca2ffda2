//! The sparse offset and time index of a segment, and its file format.
//!
//! A read must not scan a 64 MiB segment to find one offset, and opening a
//! partition must not re-read every sealed segment; the sparse index solves
//! both. In memory it is built as batches are appended or scanned; when a
//! segment is sealed it is persisted next to it as `{base_offset:020}.index`,
//! together with the segment's summary and its quarantined ranges, so a later
//! open can trust the sealed segment without scanning it.
//!
//! # File format (version 1), integers little-endian
//!
//! ```text
//!  0  4  magic "SLIX"
//!  4  1  version = 1
//!  5  4  crc32c of bytes [9, end of file)
//!  9  8  segment base_offset
//! 17  8  segment end_offset (exclusive)
//! 25  8  log_bytes: length of the .log file this index describes
//! 33  1  flags: bit 0 = has timestamps, bit 1 = has a last batch
//! 34  8  first_timestamp_ms (of the first batch; the segment-age anchor)
//! 42  8  max_timestamp_ms
//! 50  8  last batch position
//! 58  4  last batch crc
//! 62  4  offset entry count N
//! 66  4  time entry count M
//! 70  4  quarantined range count Q
//! 74     N x (offset u64, position u64)
//!        M x (max_timestamp_before_ms i64, position u64)
//!        Q x (position u64, length u64, first offset u64, end offset u64,
//!             reason length u16, reason UTF-8)
//! ```
//!
//! The last batch's position and CRC let `open` check cheaply that the `.log`
//! still holds what the index describes, beyond a mere length match.

use crate::Quarantined;
use crate::batch::BatchHeader;

const MAGIC: &[u8; 4] = b"SLIX";
const VERSION: u8 = 1;
const FIXED_BYTES: usize = 74;
const CRC_RANGE_START: usize = 9;
/// Longest quarantine reason stored; longer ones are cut (they are for humans).
pub const QUARANTINE_REASON_BYTES_MAX: usize = 512;
const _: () = assert!(QUARANTINE_REASON_BYTES_MAX <= u16::MAX as usize);

/// Offset index entry: the batch starting at `position` has base `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetEntry {
    pub offset: u64,
    pub position: u64,
}

/// Time index entry: every record before `position` in this segment has a
/// timestamp at most `max_timestamp_before_ms`. Entries are kept only when
/// that maximum grows, so the list is strictly increasing in both fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    pub max_timestamp_before_ms: i64,
    pub position: u64,
}

/// The sparse index of one segment.
#[derive(Clone, Debug, Default)]
pub struct SparseIndex {
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
    /// Bytes of batches since the last entry; drives the sparsity.
    bytes_since_entry: u64,
    /// Largest timestamp seen so far in the segment.
    max_timestamp_ms: Option<i64>,
}

/// Equal when the entries are: the build state is not persisted, and a
/// sealed segment never needs it.
impl PartialEq for SparseIndex {
    fn eq(&self, other: &Self) -> bool {
        self.offsets == other.offsets && self.times == other.times
    }
}
impl Eq for SparseIndex {}

impl SparseIndex {
    /// Notes a valid batch at `position`; adds entries every
    /// `interval_bytes` bytes (and always for the first batch).
    pub fn on_batch(&mut self, position: u64, header: &BatchHeader, interval_bytes: u32) {
        if self.offsets.is_empty() || self.bytes_since_entry >= u64::from(interval_bytes) {
            self.offsets.push(OffsetEntry {
                offset: header.base_offset,
                position,
            });
            let before = self.max_timestamp_ms.unwrap_or(i64::MIN);
            if self
                .times
                .last()
                .is_none_or(|t| before > t.max_timestamp_before_ms)
            {
                self.times.push(TimeEntry {
                    max_timestamp_before_ms: before,
                    position,
                });
            }
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += u64::from(header.length);
        self.max_timestamp_ms = Some(
            self.max_timestamp_ms
                .map_or(header.max_timestamp_ms, |m| m.max(header.max_timestamp_ms)),
        );
    }

    /// Where to start scanning for `offset`: the last entry at or below it,
    /// or `None` when the segment's first entry is already past it.
    pub fn lookup_offset(&self, offset: u64) -> Option<OffsetEntry> {
        let i = self.offsets.partition_point(|e| e.offset <= offset);
        i.checked_sub(1).map(|i| self.offsets[i])
    }

    /// Where to start scanning for the first record with timestamp >= `ts_ms`:
    /// everything before the returned position is older than `ts_ms`.
    pub fn lookup_time(&self, ts_ms: i64) -> u64 {
        let i = self
            .times
            .partition_point(|e| e.max_timestamp_before_ms < ts_ms);
        i.checked_sub(1).map_or(0, |i| self.times[i].position)
    }
}

/// Everything an index file records about a sealed segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFile {
    pub base_offset: u64,
    pub end_offset: u64,
    pub log_bytes: u64,
    pub first_timestamp_ms: Option<i64>,
    pub max_timestamp_ms: Option<i64>,
    /// Position and CRC of the last valid batch.
    pub last_batch: Option<(u64, u32)>,
    pub index: SparseIndex,
    pub quarantined: Vec<Quarantined>,
}

impl IndexFile {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            FIXED_BYTES + 16 * self.index.offsets.len() + 16 * self.index.times.len(),
        );
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.base_offset.to_le_bytes());
        out.extend_from_slice(&self.end_offset.to_le_bytes());
        out.extend_from_slice(&self.log_bytes.to_le_bytes());
        let flags = u8::from(self.first_timestamp_ms.is_some())
            | (u8::from(self.last_batch.is_some()) << 1);
        out.push(flags);
        out.extend_from_slice(&self.first_timestamp_ms.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.max_timestamp_ms.unwrap_or(0).to_le_bytes());
        let (lp, lc) = self.last_batch.unwrap_or((0, 0));
        out.extend_from_slice(&lp.to_le_bytes());
        out.extend_from_slice(&lc.to_le_bytes());
        let count = |n: usize| u32::try_from(n).expect("index entries bounded by segment size");
        out.extend_from_slice(&count(self.index.offsets.len()).to_le_bytes());
        out.extend_from_slice(&count(self.index.times.len()).to_le_bytes());
        out.extend_from_slice(&count(self.quarantined.len()).to_le_bytes());
        debug_assert_eq!(out.len(), FIXED_BYTES);
        for e in &self.index.offsets {
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(&e.position.to_le_bytes());
        }
        for e in &self.index.times {
            out.extend_from_slice(&e.max_timestamp_before_ms.to_le_bytes());
            out.extend_from_slice(&e.position.to_le_bytes());
        }
        for q in &self.quarantined {
            out.extend_from_slice(&q.file_position.to_le_bytes());
            out.extend_from_slice(&q.length.to_le_bytes());
            out.extend_from_slice(&q.offsets.start.to_le_bytes());
            out.extend_from_slice(&q.offsets.end.to_le_bytes());
            let reason = truncate_utf8(&q.reason, QUARANTINE_REASON_BYTES_MAX);
            out.extend_from_slice(&(reason.len() as u16).to_le_bytes());
            out.extend_from_slice(reason.as_bytes());
        }
        let crc = crc32c::crc32c(&out[CRC_RANGE_START..]);
        out[5..9].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes an index file. Any inconsistency is an `Err` with a reason: the
    /// caller then falls back to scanning the segment, so this never needs to
    /// be more than a yes/no with an explanation for the log line.
    pub fn decode(buf: &[u8]) -> Result<IndexFile, String> {
        if buf.len() < FIXED_BYTES {
            return Err(format!(
                "index of {} bytes is shorter than its header",
                buf.len()
            ));
        }
        if &buf[0..4] != MAGIC || buf[4] != VERSION {
            return Err("bad index magic or version".into());
        }
        let stored = u32::from_le_bytes(buf[5..9].try_into().expect("4 bytes"));
        let computed = crc32c::crc32c(&buf[CRC_RANGE_START..]);
        if stored != computed {
            return Err(format!(
                "index crc mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ));
        }
        let mut r = Reader { buf, at: 9 };
        let base_offset = r.u64()?;
        let end_offset = r.u64()?;
        let log_bytes = r.u64()?;
        let flags = r.bytes(1)?[0];
        let first = r.u64()? as i64;
        let max = r.u64()? as i64;
        let lp = r.u64()?;
        let lc = r.u32()?;
        let n_offsets = r.u32()? as usize;
        let n_times = r.u32()? as usize;
        let n_quarantined = r.u32()? as usize;
        // Bound the counts by the bytes present before allocating for them.
        let remaining = buf.len() - r.at;
        if n_offsets.saturating_add(n_times).saturating_mul(16) > remaining
            || n_quarantined.saturating_mul(34) > remaining
        {
            return Err("index entry counts exceed the file".into());
        }
        let mut index = SparseIndex::default();
        for _ in 0..n_offsets {
            index.offsets.push(OffsetEntry {
                offset: r.u64()?,
                position: r.u64()?,
            });
        }
        for _ in 0..n_times {
            index.times.push(TimeEntry {
                max_timestamp_before_ms: r.u64()? as i64,
                position: r.u64()?,
            });
        }
        let mut quarantined = Vec::with_capacity(n_quarantined);
        for _ in 0..n_quarantined {
            let file_position = r.u64()?;
            let length = r.u64()?;
            let start = r.u64()?;
            let end = r.u64()?;
            let len = u16::from_le_bytes(r.bytes(2)?.try_into().expect("2 bytes")) as usize;
            let reason = String::from_utf8_lossy(r.bytes(len)?).into_owned();
            quarantined.push(Quarantined {
                segment_base_offset: base_offset,
                file_position,
                length,
                offsets: start..end,
                reason,
            });
        }
        if r.at != buf.len() {
            return Err("trailing bytes in index".into());
        }
        let file = IndexFile {
            base_offset,
            end_offset,
            log_bytes,
            first_timestamp_ms: (flags & 1 != 0).then_some(first),
            max_timestamp_ms: (flags & 1 != 0).then_some(max),
            last_batch: (flags & 2 != 0).then_some((lp, lc)),
            index,
            quarantined,
        };
        file.check()?;
        Ok(file)
    }

    /// Internal consistency: sorted entries inside the segment, sane ranges.
    fn check(&self) -> Result<(), String> {
        let in_file = |p: u64| p < self.log_bytes;
        let in_offsets = |o: u64| o >= self.base_offset && o < self.end_offset;
        if self.end_offset < self.base_offset {
            return Err("end offset below base offset".into());
        }
        if !self
            .index
            .offsets
            .windows(2)
            .all(|w| w[0].offset < w[1].offset && w[0].position < w[1].position)
            || !self
                .index
                .offsets
                .iter()
                .all(|e| in_file(e.position) && in_offsets(e.offset))
        {
            return Err("offset index entries out of order or out of range".into());
        }
        if !self.index.times.windows(2).all(|w| {
            w[0].max_timestamp_before_ms < w[1].max_timestamp_before_ms
                && w[0].position < w[1].position
        }) || !self.index.times.iter().all(|e| in_file(e.position))
        {
            return Err("time index entries out of order or out of range".into());
        }
        if self.last_batch.is_some_and(|(p, _)| !in_file(p)) {
            return Err("last batch position past the log".into());
        }
        for q in &self.quarantined {
            let fits = q
                .file_position
                .checked_add(q.length)
                .is_some_and(|e| e <= self.log_bytes);
            if !fits || q.offsets.start > q.offsets.end || q.offsets.start < self.base_offset {
                return Err("quarantined range out of bounds".into());
            }
        }
        Ok(())
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or("index truncated")?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.bytes(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.bytes(4)?.try_into().expect("4 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(base: u64, count: u32, length: u32, max_ts: i64) -> BatchHeader {
        BatchHeader {
            crc: 0,
            length,
            base_offset: base,
            record_count: count,
            first_timestamp_ms: max_ts,
            max_timestamp_ms: max_ts,
        }
    }

    #[test]
    fn sparse_lookup() {
        let mut idx = SparseIndex::default();
        // Five batches of 100 bytes, 10 records each, interval 150 bytes:
        // entries at batches 0, 2, 4.
        for (i, ts) in [10, 30, 20, 50, 40].into_iter().enumerate() {
            idx.on_batch(i as u64 * 100, &header(i as u64 * 10, 10, 100, ts), 150);
        }
        assert_eq!(
            idx.offsets.iter().map(|e| e.position).collect::<Vec<_>>(),
            vec![0, 200, 400]
        );
        assert_eq!(idx.lookup_offset(0).unwrap().position, 0);
        assert_eq!(idx.lookup_offset(25).unwrap().position, 200);
        assert_eq!(idx.lookup_offset(1000).unwrap().position, 400);
        // Time entries: (MIN, 0), (30, 200), (50, 400).
        assert_eq!(idx.lookup_time(i64::MIN), 0);
        assert_eq!(idx.lookup_time(25), 0);
        assert_eq!(idx.lookup_time(31), 200);
        assert_eq!(idx.lookup_time(51), 400);
    }

    #[test]
    fn file_round_trip_and_rejects_damage() {
        let mut index = SparseIndex::default();
        index.on_batch(0, &header(100, 5, 80, 7), 1);
        index.on_batch(80, &header(105, 5, 80, 9), 1);
        let file = IndexFile {
            base_offset: 100,
            end_offset: 112,
            log_bytes: 200,
            first_timestamp_ms: Some(7),
            max_timestamp_ms: Some(9),
            last_batch: Some((120, 0xdead_beef)),
            index,
            quarantined: vec![Quarantined {
                segment_base_offset: 100,
                file_position: 160,
                length: 40,
                offsets: 110..112,
                reason: "crc mismatch".into(),
            }],
        };
        let bytes = file.encode();
        assert_eq!(IndexFile::decode(&bytes).unwrap(), file);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(IndexFile::decode(&bad).is_err(), "flip at {i} accepted");
            assert!(IndexFile::decode(&bytes[..i]).is_err());
        }
    }
}
