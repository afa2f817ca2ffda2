//! `sluice-log`: the durable, segmented, checksummed append-only log that stores
//! one partition of a Sluice stream.
//!
//! The crate exists so that the broker can hand records to something that keeps
//! them exactly, survives crashes, and says clearly when it cannot. It knows
//! nothing about tenants, MQTT, HTTP or Wasm, does plain blocking I/O behind the
//! [`Storage`] seam (so tests can inject faults and simulate crashes), and never
//! reads the clock: every call that needs the time takes `now_ms`.
//!
//! Layout on disk, per partition directory:
//!
//! * `{base_offset:020}.log` — a segment: record batches back to back
//!   (format in [`batch`]).
//! * `{base_offset:020}.index` — the persisted sparse offset + time index of a
//!   *sealed* segment (format in `index.rs`), written when the segment is rolled.
//! * `{base_offset:020}.quarantine` — copies of corrupt byte ranges found in that
//!   segment during recovery, kept for forensics (see `recovery.rs`).
//!
//! Map of the modules:
//!
//! * [`batch`] (with `varint`): the on-disk batch codec (pure, never panics).
//! * `index`: the sparse offset and time index and its file format.
//! * `segment`: one `.log` file plus its in-memory index; reading batches.
//! * `recovery`: scanning a segment on open, torn-tail truncation, quarantine.
//! * `partition`: the public [`Partition`] that ties segments together.
//! * `storage`: the [`Storage`] seam and the real [`FsStorage`].
//! * [`testing`]: [`testing::MemStorage`] and [`testing::FaultyStorage`].

pub mod batch;
mod config;
mod error;
mod index;
mod partition;
mod recovery;
mod segment;
mod storage;
pub mod testing;
mod varint;

#[cfg(test)]
mod tests;

pub use bytes::Bytes;
pub use config::{
    BATCH_BYTES_LIMIT, DEFAULT_BATCH_BYTES_MAX, DEFAULT_INDEX_INTERVAL_BYTES,
    DEFAULT_SEGMENT_AGE_MS_MAX, DEFAULT_SEGMENT_BYTES_MAX, PartitionConfig, Retention,
};
pub use error::LogError;
pub use partition::Partition;
pub use storage::{FsStorage, Storage, StorageFile};

/// One record as the caller hands it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Milliseconds since the Unix epoch, chosen by the caller (the log never
    /// reads the clock). Need not be monotonic; the time index copes.
    pub timestamp_ms: i64,
    /// Optional key; `None` and `Some(empty)` are distinct on disk.
    pub key: Option<Bytes>,
    /// The payload.
    pub value: Bytes,
}

/// One record as read back, with its offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    /// Dense position in the partition, starting at 0 and never reused.
    pub offset: u64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Bytes,
}

/// What [`Partition::open`] found and repaired.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    /// Bytes cut off the end of the last segment (a torn or corrupt tail with
    /// nothing valid after it).
    pub truncated_bytes: u64,
    /// Every quarantined range the partition holds after opening: found by
    /// this recovery's scans or recorded in a sealed segment's index.
    pub quarantined: Vec<Quarantined>,
    /// Number of segments after recovery.
    pub segments: usize,
}

/// A corrupt byte range followed by valid data: kept out of reads, copied to
/// the segment's `.quarantine` file, and accounted for so offsets stay dense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub segment_base_offset: u64,
    /// Byte position of the range inside the segment's `.log` file.
    pub file_position: u64,
    /// Length of the range in bytes (0 for a pure offset gap between segments).
    pub length: u64,
    /// The offsets that range held; reads skip them.
    pub offsets: std::ops::Range<u64>,
    pub reason: String,
}

/// What [`Partition::enforce_retention`] did.
#[derive(Debug, Default, Clone)]
pub struct RetentionReport {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    pub new_start_offset: u64,
}
