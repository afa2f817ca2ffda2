//! Partition configuration and the hard limits behind it.
//!
//! Every limit is named with its unit last (`segment_bytes_max`), and the
//! relations between constants are checked at compile time so that a future
//! edit cannot make, say, the default batch larger than what the format can
//! express.

use crate::batch::{BATCH_HEADER_BYTES, RECORD_BYTES_MIN};

/// Default size past which the active segment is rolled: large enough that
/// per-segment costs (an fd, an index, a directory entry) stay negligible,
/// small enough that retention by whole segments is reasonably fine-grained.
pub const DEFAULT_SEGMENT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Default age (since the segment's first record) past which it is rolled, so
/// that time-based retention can delete a quiet partition's old data.
pub const DEFAULT_SEGMENT_AGE_MS_MAX: u64 = 24 * 60 * 60 * 1000;
/// Default spacing of sparse index entries: a read seeks to an entry and then
/// scans at most about this many bytes.
pub const DEFAULT_INDEX_INTERVAL_BYTES: u32 = 4096;
/// Default ceiling on one encoded batch; it also bounds every allocation the
/// decoder makes from a length it read off disk.
pub const DEFAULT_BATCH_BYTES_MAX: u32 = 16 * 1024 * 1024;
/// Hard ceiling for `batch_bytes_max`: a reader holds a whole batch in memory,
/// so no configuration may ask for more than this.
pub const BATCH_BYTES_LIMIT: u32 = 256 * 1024 * 1024;

const _: () = assert!(DEFAULT_BATCH_BYTES_MAX <= BATCH_BYTES_LIMIT);
const _: () = assert!(DEFAULT_BATCH_BYTES_MAX as u64 <= DEFAULT_SEGMENT_BYTES_MAX);
const _: () = assert!((DEFAULT_INDEX_INTERVAL_BYTES as u64) < DEFAULT_SEGMENT_BYTES_MAX);
const _: () = assert!(BATCH_HEADER_BYTES + RECORD_BYTES_MIN <= 64);

/// The smallest `batch_bytes_max` accepted: room for a header and a tiny record.
pub const BATCH_BYTES_MAX_MIN: u32 = 64;

#[derive(Clone, Debug)]
pub struct PartitionConfig {
    /// Roll the active segment before an append that would take it past this size.
    pub segment_bytes_max: u64,
    /// Roll the active segment once its first record is older than this.
    pub segment_age_ms_max: u64,
    /// One sparse index entry per this many bytes of batches.
    pub index_interval_bytes: u32,
    /// Largest encoded batch accepted; larger appends fail with
    /// [`LogError::BatchTooLarge`](crate::LogError::BatchTooLarge), and the
    /// decoder rejects larger lengths before allocating.
    pub batch_bytes_max: u32,
}

impl Default for PartitionConfig {
    fn default() -> Self {
        PartitionConfig {
            segment_bytes_max: DEFAULT_SEGMENT_BYTES_MAX,
            segment_age_ms_max: DEFAULT_SEGMENT_AGE_MS_MAX,
            index_interval_bytes: DEFAULT_INDEX_INTERVAL_BYTES,
            batch_bytes_max: DEFAULT_BATCH_BYTES_MAX,
        }
    }
}

impl PartitionConfig {
    /// Checks the values against the hard limits.
    /// [`Partition::open`](crate::Partition::open) calls this and refuses an invalid config; the
    /// broker may call it earlier, when it loads its configuration, to report
    /// the problem with the file and line.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_bytes_max < BATCH_BYTES_MAX_MIN || self.batch_bytes_max > BATCH_BYTES_LIMIT {
            return Err(format!(
                "batch_bytes_max {} must be within {BATCH_BYTES_MAX_MIN}..={BATCH_BYTES_LIMIT}",
                self.batch_bytes_max
            ));
        }
        if self.segment_bytes_max == 0 {
            return Err("segment_bytes_max must be positive".into());
        }
        if self.index_interval_bytes == 0 {
            return Err("index_interval_bytes must be positive".into());
        }
        Ok(())
    }
}

/// Retention of whole sealed segments; `None` means "no limit of this kind".
#[derive(Clone, Debug, Default)]
pub struct Retention {
    pub max_age_ms: Option<u64>,
    pub max_bytes: Option<u64>,
}
