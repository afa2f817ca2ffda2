//! Scenario and property tests of the whole partition, driven through the
//! in-memory and fault-injecting storages (and once through real files).
//! Unit tests of the pieces live beside them; these check how they compose.

mod fs;
mod model;
mod partition;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::{Partition, PartitionConfig, Record, RecoveryReport, Storage, StoredRecord};

pub(crate) const DIR: &str = "/data/stream/0";

pub(crate) fn dir() -> &'static Path {
    Path::new(DIR)
}

/// Small limits so a handful of records exercise rolling and the sparse index.
pub(crate) fn small_config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes_max: 1024,
        segment_age_ms_max: 3_600_000,
        index_interval_bytes: 128,
        batch_bytes_max: 64 * 1024,
    }
}

pub(crate) fn rec(ts: i64, value: &str) -> Record {
    Record {
        timestamp_ms: ts,
        key: Some(Bytes::from(format!("k-{value}"))),
        value: Bytes::from(value.to_owned()),
    }
}

pub(crate) fn open(
    storage: Arc<dyn Storage>,
    config: PartitionConfig,
) -> (Partition, RecoveryReport) {
    Partition::open(storage, dir(), config, 0).expect("open")
}

pub(crate) fn read_all(p: &Partition) -> Vec<StoredRecord> {
    p.read(0, u64::MAX, usize::MAX, usize::MAX).expect("read")
}

pub(crate) fn values(records: &[StoredRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.to_vec()).unwrap())
        .collect()
}

pub(crate) fn offsets(records: &[StoredRecord]) -> Vec<u64> {
    records.iter().map(|r| r.offset).collect()
}
