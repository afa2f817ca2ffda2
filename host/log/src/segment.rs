//! One segment: a `.log` file of batches, its in-memory sparse index and
//! summary, and the bounded reader used to walk its batches.
//!
//! A partition is a list of segments so that retention can delete old data by
//! removing whole files (no compaction, no rewriting) and so that only the
//! last, active segment ever changes.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::Quarantined;
use crate::batch::{self, BATCH_HEADER_BYTES, Batch, BatchHeader, DecodeError};
use crate::index::{IndexFile, SparseIndex};
use crate::storage::{StorageFile, read_exact_at};

/// Width of the zero-padded base offset in file names: `u64::MAX` has 20
/// digits, and fixed width makes lexical order equal numeric order.
pub const FILE_NAME_DIGITS: usize = 20;
const _: () = assert!(u64::MAX.ilog10() as usize + 1 == FILE_NAME_DIGITS);

/// How much a [`ChunkReader`] reads at once: enough to amortise a syscall over
/// many small batches, small enough to keep readers' memory flat.
pub(crate) const READ_CHUNK_BYTES: usize = 64 * 1024;

pub fn log_file_name(base_offset: u64) -> String {
    format!("{base_offset:020}.log")
}
pub fn index_file_name(base_offset: u64) -> String {
    format!("{base_offset:020}.index")
}
pub fn quarantine_file_name(base_offset: u64) -> String {
    format!("{base_offset:020}.quarantine")
}

/// Parses `{base_offset:020}.{ext}`; anything else in the directory is not ours.
pub fn parse_file_name(name: &str, ext: &str) -> Option<u64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != FILE_NAME_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// One segment and what the log knows about it.
#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: u64,
    pub path: PathBuf,
    pub file: Box<dyn StorageFile>,
    /// Bytes of the `.log` file that belong to the log; appends go here.
    pub size_bytes: u64,
    /// One past the last offset the segment accounts for (valid or quarantined).
    pub end_offset: u64,
    /// First timestamp of the first batch: the anchor for age-based rolling.
    pub first_timestamp_ms: Option<i64>,
    /// Largest record timestamp: drives time retention and time lookups.
    pub max_timestamp_ms: Option<i64>,
    pub index: SparseIndex,
    /// Position and CRC of the last valid batch, persisted in the index file
    /// so that `open` can detect a `.log` that no longer matches its index.
    pub last_batch: Option<(u64, u32)>,
    /// Quarantined ranges of this segment, in file order.
    pub quarantined: Vec<Quarantined>,
}

impl Segment {
    pub fn empty(dir: &Path, base_offset: u64, file: Box<dyn StorageFile>) -> Segment {
        Segment {
            base_offset,
            path: dir.join(log_file_name(base_offset)),
            file,
            size_bytes: 0,
            end_offset: base_offset,
            first_timestamp_ms: None,
            max_timestamp_ms: None,
            index: SparseIndex::default(),
            last_batch: None,
            quarantined: Vec::new(),
        }
    }

    pub fn from_index(dir: &Path, file: Box<dyn StorageFile>, idx: IndexFile) -> Segment {
        Segment {
            base_offset: idx.base_offset,
            path: dir.join(log_file_name(idx.base_offset)),
            file,
            size_bytes: idx.log_bytes,
            end_offset: idx.end_offset,
            first_timestamp_ms: idx.first_timestamp_ms,
            max_timestamp_ms: idx.max_timestamp_ms,
            index: idx.index,
            last_batch: idx.last_batch,
            quarantined: idx.quarantined,
        }
    }

    pub fn to_index_file(&self) -> IndexFile {
        IndexFile {
            base_offset: self.base_offset,
            end_offset: self.end_offset,
            log_bytes: self.size_bytes,
            first_timestamp_ms: self.first_timestamp_ms,
            max_timestamp_ms: self.max_timestamp_ms,
            last_batch: self.last_batch,
            index: self.index.clone(),
            quarantined: self.quarantined.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    /// Accounts for a valid batch written or found at `position`, which must
    /// be the current end of the segment and continue its offsets.
    pub fn on_batch(&mut self, position: u64, header: &BatchHeader, index_interval_bytes: u32) {
        assert_eq!(position, self.size_bytes, "batch not at the segment's end");
        assert_eq!(
            header.base_offset, self.end_offset,
            "batch does not continue the offsets"
        );
        self.index.on_batch(position, header, index_interval_bytes);
        self.size_bytes += u64::from(header.length);
        self.end_offset = header.end_offset();
        self.first_timestamp_ms
            .get_or_insert(header.first_timestamp_ms);
        self.max_timestamp_ms = Some(
            self.max_timestamp_ms
                .map_or(header.max_timestamp_ms, |m| m.max(header.max_timestamp_ms)),
        );
        self.last_batch = Some((position, header.crc));
    }

    /// The quarantined range with bytes starting exactly at `position`, which
    /// a reader must jump over.
    pub fn quarantined_at(&self, position: u64) -> Option<&Quarantined> {
        self.quarantined
            .iter()
            .find(|q| q.length > 0 && q.file_position == position)
    }
}

/// Why a batch could not be read.
#[derive(Debug)]
pub(crate) enum BatchReadError {
    Io(io::Error),
    Decode(DecodeError),
}

impl From<io::Error> for BatchReadError {
    fn from(e: io::Error) -> Self {
        BatchReadError::Io(e)
    }
}

/// Reads a file sequentially through a bounded buffer, never past `end`.
///
/// Scans and reads touch batches in order, usually small ones, so reading in
/// chunks turns thousands of tiny `read_at` calls into a few large ones while
/// holding at most one chunk (or one batch, if larger) in memory.
pub(crate) struct ChunkReader<'a> {
    file: &'a dyn StorageFile,
    end: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'a> ChunkReader<'a> {
    pub fn new(file: &'a dyn StorageFile, end: u64) -> Self {
        ChunkReader {
            file,
            end,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// The `len` bytes at `pos`, or `None` when they would run past `end`.
    pub fn get(&mut self, pos: u64, len: usize) -> io::Result<Option<&[u8]>> {
        let Some(want_end) = pos.checked_add(len as u64).filter(|&e| e <= self.end) else {
            return Ok(None);
        };
        let buf_end = self.buf_start + self.buf.len() as u64;
        if pos < self.buf_start || want_end > buf_end {
            let chunk = (self.end - pos).min(len.max(READ_CHUNK_BYTES) as u64) as usize;
            self.buf.clear();
            self.buf.resize(chunk, 0);
            read_exact_at(self.file, &mut self.buf, pos)?;
            self.buf_start = pos;
        }
        let at = (pos - self.buf_start) as usize;
        Ok(Some(&self.buf[at..at + len]))
    }

    /// The header of the batch at `pos` (bounded by `batch_bytes_max`), not yet
    /// CRC-checked. `Incomplete` if the file ends first.
    pub fn header_at(
        &mut self,
        pos: u64,
        batch_bytes_max: u32,
    ) -> Result<BatchHeader, BatchReadError> {
        let have = self.end.saturating_sub(pos).min(BATCH_HEADER_BYTES as u64) as usize;
        let Some(bytes) = self.get(pos, BATCH_HEADER_BYTES)? else {
            return Err(BatchReadError::Decode(DecodeError::Incomplete {
                have,
                need: BATCH_HEADER_BYTES,
            }));
        };
        batch::decode_header(bytes, batch_bytes_max).map_err(BatchReadError::Decode)
    }

    /// Checks the whole batch at `pos` (CRC and structure) without decoding it.
    pub fn validate_at(
        &mut self,
        pos: u64,
        batch_bytes_max: u32,
    ) -> Result<BatchHeader, BatchReadError> {
        let header = self.header_at(pos, batch_bytes_max)?;
        let bytes = self.whole(pos, &header)?;
        batch::validate(bytes, batch_bytes_max).map_err(BatchReadError::Decode)
    }

    /// Reads, CRC-checks and decodes the batch at `pos`: the read side of the
    /// pair assertion whose write side is in `Partition::append`.
    pub fn decode_at(&mut self, pos: u64, batch_bytes_max: u32) -> Result<Batch, BatchReadError> {
        let header = self.header_at(pos, batch_bytes_max)?;
        let bytes = Bytes::copy_from_slice(self.whole(pos, &header)?);
        batch::decode_bytes(bytes, batch_bytes_max).map_err(BatchReadError::Decode)
    }

    fn whole(&mut self, pos: u64, header: &BatchHeader) -> Result<&[u8], BatchReadError> {
        let need = header.length as usize;
        let have = self.end.saturating_sub(pos).min(need as u64) as usize;
        match self.get(pos, need)? {
            Some(b) => Ok(b),
            None => Err(BatchReadError::Decode(DecodeError::Incomplete {
                have,
                need,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        assert_eq!(log_file_name(42), "00000000000000000042.log");
        assert_eq!(
            parse_file_name(&log_file_name(u64::MAX), "log"),
            Some(u64::MAX)
        );
        assert_eq!(parse_file_name(&index_file_name(7), "index"), Some(7));
        assert_eq!(parse_file_name("42.log", "log"), None);
        assert_eq!(parse_file_name("0000000000000000004x.log", "log"), None);
        assert_eq!(parse_file_name("00000000000000000042.log.tmp", "log"), None);
        assert_eq!(parse_file_name("99999999999999999999.log", "log"), None);
    }
}
