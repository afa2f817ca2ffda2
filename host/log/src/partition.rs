//! The partition: an ordered list of segments with dense offsets, and the
//! public face of the crate.
//!
//! Durability rules live here. `append` writes but never fsyncs, because the
//! broker batches many appends into one `sync` (group commit) and acknowledges
//! producers only after it. Any fsync failure poisons the partition: after EIO
//! the kernel may have dropped the dirty pages and cleared the error, so a
//! retry that "succeeds" proves nothing (PostgreSQL's "fsyncgate"); the only
//! honest recovery is to reopen and re-read what is really on disk.

use std::collections::BTreeSet;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::batch;
use crate::config::{PartitionConfig, Retention};
use crate::error::LogError;
use crate::index::IndexFile;
use crate::recovery::{scan_segment, write_quarantine_file};
use crate::segment::{
    BatchReadError, ChunkReader, Segment, index_file_name, log_file_name, parse_file_name,
    quarantine_file_name,
};
use crate::storage::{Storage, read_exact_at};
use crate::{Quarantined, Record, RecoveryReport, RetentionReport, StoredRecord};

/// An index file larger than its segment plus this slack cannot be ours: the
/// bound keeps a damaged size field from making `open` allocate wildly.
const INDEX_FILE_SLACK_BYTES: u64 = 1024 * 1024;

/// One partition's log. `Send + Sync`: the broker keeps it behind a `RwLock`,
/// with readers calling [`read`](Self::read) and [`sync`](Self::sync)
/// concurrently under the shared lock.
pub struct Partition {
    /// The file system seam; real files in production, doubles in tests.
    storage: Arc<dyn Storage>,
    /// The partition directory holding every segment, index and quarantine file.
    dir: PathBuf,
    config: PartitionConfig,
    /// Oldest first; never empty: the last one is the active segment.
    segments: Vec<Segment>,
    /// Every quarantined range of every live segment, in offset order; a
    /// separate copy so `quarantined()` can hand out one slice.
    quarantined: Vec<Quarantined>,
    /// Set on a failed fsync or a failed undo of a failed write; atomic because
    /// `sync` takes `&self` and may poison under a shared lock.
    poisoned: AtomicBool,
    /// Reused encoding buffer, so steady-state appends do not allocate.
    scratch: Vec<u8>,
}

const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Partition>();
};

/// A summary, not the whole state: segment indexes and the scratch buffer
/// would drown a log line.
impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("dir", &self.dir)
            .field("start_offset", &self.start_offset())
            .field("next_offset", &self.next_offset())
            .field("segments", &self.segments.len())
            .field("quarantined", &self.quarantined.len())
            .field("poisoned", &self.is_poisoned())
            .finish()
    }
}

fn invalid_config(dir: &Path, msg: String) -> LogError {
    LogError::Io {
        path: dir.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, msg),
    }
}

impl Partition {
    /// Opens (creating if missing) the partition in `dir`, recovering: a torn
    /// tail of the last segment is truncated; a corrupt batch followed by valid
    /// data is reported and quarantined (its bytes copied into
    /// `{base:020}.quarantine`, its offsets skipped by reads), never dropped
    /// with the data after it.
    ///
    /// Sealed segments with a valid index file are trusted without a scan (so
    /// opening is fast); corruption inside them is found by the CRC check of
    /// `read`, which then fails with [`LogError::Corrupt`]. An invalid
    /// `config` is refused as an `Io` error of kind `InvalidInput`.
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        config: PartitionConfig,
        now_ms: i64,
    ) -> Result<(Partition, RecoveryReport), LogError> {
        // The clock does not matter to recovery: a segment's age comes from its
        // records. It is taken for symmetry with the other calls and logging.
        let _ = now_ms;
        config.validate().map_err(|m| invalid_config(dir, m))?;
        let io_dir = |e| LogError::io(dir, e);
        storage.create_dir_all(dir).map_err(io_dir)?;
        let names = storage.list_dir(dir).map_err(io_dir)?;
        let mut logs = BTreeSet::new();
        let mut indexes = BTreeSet::new();
        let mut quarantines = BTreeSet::new();
        for name in names {
            if let Some(b) = parse_file_name(&name, "log") {
                logs.insert(b);
            } else if let Some(b) = parse_file_name(&name, "index") {
                indexes.insert(b);
            } else if let Some(b) = parse_file_name(&name, "quarantine") {
                quarantines.insert(b);
            }
        }
        let mut dir_dirty = false;
        // Index or quarantine files whose segment is gone are leftovers of a
        // retention interrupted by a crash; removing them is tidy, not vital.
        for b in indexes
            .iter()
            .chain(&quarantines)
            .copied()
            .filter(|b| !logs.contains(b))
        {
            for name in [index_file_name(b), quarantine_file_name(b)] {
                if storage.remove_file(&dir.join(&name)).is_ok() {
                    dir_dirty = true;
                }
            }
        }

        let mut report = RecoveryReport::default();
        let bases: Vec<u64> = logs.into_iter().collect();
        let mut segments = Vec::with_capacity(bases.len().max(1));
        for (i, &base) in bases.iter().enumerate() {
            let path = dir.join(log_file_name(base));
            let file = storage
                .open_file(&path, false)
                .map_err(|e| LogError::io(&path, e))?;
            let file_len = file.len().map_err(|e| LogError::io(&path, e))?;
            let next_base = bases.get(i + 1).copied();
            if next_base.is_some() && indexes.contains(&base) {
                match load_index(&*storage, dir, base, &*file, file_len) {
                    Ok(idx) => {
                        segments.push(Segment::from_index(dir, file, idx));
                        continue;
                    }
                    Err(reason) => {
                        tracing::info!(segment = %path.display(), %reason, "index unusable; rebuilding by scanning");
                    }
                }
            }
            let mut seg = Segment::empty(dir, base, file);
            let outcome = scan_segment(&mut seg, file_len, next_base, &config)?;
            if outcome.truncated_bytes > 0 {
                seg.file
                    .set_len(seg.size_bytes)
                    .map_err(|e| LogError::io(&path, e))?;
                report.truncated_bytes += outcome.truncated_bytes;
            }
            if next_base.is_none() {
                // Whatever the last segment holds now may have been left in the
                // page cache by a previous process that never synced it. Sync it
                // before serving it, so no consumer sees a record that a power
                // loss could take back; this also makes a truncation durable, so
                // a second crash cannot bring torn bytes back in front of new
                // appends.
                seg.file.sync_data().map_err(|e| LogError::io(&path, e))?;
            }
            if outcome.found_quarantine {
                if let Err(e) = write_quarantine_file(&*storage, dir, &seg) {
                    // The bytes are still in the .log; only the copy failed.
                    tracing::warn!(segment = %path.display(), error = %e, "could not write quarantine file");
                }
                dir_dirty = true;
            }
            if next_base.is_some() {
                // A sealed segment that had to be scanned: persist its index
                // so the next open can skip the scan.
                match write_index_file(&*storage, dir, &seg) {
                    Ok(()) => dir_dirty = true,
                    Err(e) => {
                        tracing::warn!(segment = %path.display(), error = %e, "could not write index file")
                    }
                }
            }
            segments.push(seg);
        }
        if segments.is_empty() {
            let path = dir.join(log_file_name(0));
            let file = storage
                .open_file(&path, true)
                .map_err(|e| LogError::io(&path, e))?;
            storage.sync_dir(dir).map_err(io_dir)?;
            // A new partition directory is itself an entry of its parent;
            // without this a crash could lose the directory with its synced
            // segment. Best effort: the parent may not be ours to open.
            if let Some(parent) = dir.parent()
                && let Err(e) = storage.sync_dir(parent)
            {
                tracing::warn!(dir = %parent.display(), error = %e, "could not fsync parent directory");
            }
            dir_dirty = false;
            segments.push(Segment::empty(dir, 0, file));
        }
        // Segments must tile the offsets: a gap (which only corruption can
        // cause) is recorded as quarantined so reads skip it; an overlap means
        // the directory holds data we cannot order, so refuse to guess.
        for i in 0..segments.len() - 1 {
            let (end, next_base) = (segments[i].end_offset, segments[i + 1].base_offset);
            if end > next_base {
                return Err(LogError::Corrupt {
                    segment: segments[i].path.clone(),
                    position: segments[i].size_bytes,
                    reason: format!(
                        "segment ends at offset {end}, past the next segment's base {next_base}"
                    ),
                });
            }
            if end < next_base {
                let seg = &mut segments[i];
                seg.quarantined.push(Quarantined {
                    segment_base_offset: seg.base_offset,
                    file_position: seg.size_bytes,
                    length: 0,
                    offsets: end..next_base,
                    reason: "offsets missing between segments".into(),
                });
                seg.end_offset = next_base;
            }
        }
        if dir_dirty && let Err(e) = storage.sync_dir(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not fsync directory after recovery");
        }
        let quarantined: Vec<Quarantined> = segments
            .iter()
            .flat_map(|s| s.quarantined.iter().cloned())
            .collect();
        report.quarantined = quarantined.clone();
        report.segments = segments.len();
        let partition = Partition {
            storage,
            dir: dir.to_owned(),
            config,
            segments,
            quarantined,
            poisoned: AtomicBool::new(false),
            scratch: Vec::new(),
        };
        tracing::debug!(dir = %dir.display(), start = partition.start_offset(), next = partition.next_offset(), segments = report.segments, "partition opened");
        Ok((partition, report))
    }

    /// Appends all records as ONE checksummed batch (rolling the segment first
    /// if needed). Does not fsync. Returns the dense offset range assigned. On
    /// a write error the partial bytes are truncated away; if even that fails
    /// the partition is poisoned.
    pub fn append(&mut self, records: &[Record], now_ms: i64) -> Result<Range<u64>, LogError> {
        self.check_poisoned()?;
        if records.is_empty() {
            return Err(LogError::Empty);
        }
        let bytes = batch::encoded_len(records);
        if bytes > u64::from(self.config.batch_bytes_max) {
            return Err(LogError::BatchTooLarge {
                bytes,
                max: u64::from(self.config.batch_bytes_max),
            });
        }
        if self.should_roll(bytes, now_ms) {
            self.roll()?;
        }
        let base = self.next_offset();
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let header = batch::encode(base, records, &mut buf);
        // Pair assertion, write side: what we are about to write must decode
        // to itself. The read side is the CRC check on every read.
        debug_assert_eq!(
            batch::validate(&buf, self.config.batch_bytes_max),
            Ok(header)
        );
        let result = self.write_active(&buf, &header);
        self.scratch = buf;
        result?;
        Ok(base..header.end_offset())
    }

    fn write_active(&mut self, buf: &[u8], header: &batch::BatchHeader) -> Result<(), LogError> {
        let interval = self.config.index_interval_bytes;
        let active = self
            .segments
            .last_mut()
            .expect("a partition always has an active segment");
        let pos = active.size_bytes;
        match active.file.write_all_at(buf, pos) {
            Ok(()) => {
                active.on_batch(pos, header, interval);
                Ok(())
            }
            Err(e) => {
                let err = LogError::io(&active.path, e);
                // Undo the partial write so no reader or later append ever sees
                // half a batch. If the undo fails too, the file's end is
                // unknown: poison, and let reopen's scan sort it out.
                if let Err(undo) = active.file.set_len(pos) {
                    tracing::error!(segment = %active.path.display(), error = %undo, "could not truncate after failed write; poisoning");
                    self.poisoned.store(true, Ordering::SeqCst);
                }
                Err(err)
            }
        }
    }

    fn should_roll(&self, incoming_bytes: u64, now_ms: i64) -> bool {
        let active = self.active();
        if active.is_empty() {
            return false;
        }
        let too_big =
            active.size_bytes.saturating_add(incoming_bytes) > self.config.segment_bytes_max;
        too_big || self.is_too_old(active, now_ms)
    }

    fn is_too_old(&self, seg: &Segment, now_ms: i64) -> bool {
        seg.first_timestamp_ms.is_some_and(|t| {
            i128::from(now_ms) - i128::from(t) >= i128::from(self.config.segment_age_ms_max)
        })
    }

    /// Seals the active segment and starts a new one at `next_offset()`:
    /// fsync the old segment (it is never written again, so this is its last
    /// chance), persist its index, create the new file, fsync the directory so
    /// the new file survives a crash.
    fn roll(&mut self) -> Result<(), LogError> {
        let base = self.next_offset();
        let active = self.segments.last().expect("active segment");
        if let Err(e) = active.file.sync_data() {
            self.poisoned.store(true, Ordering::SeqCst);
            return Err(LogError::io(&active.path, e));
        }
        if let Err(e) = write_index_file(&*self.storage, &self.dir, active) {
            // The index is derived data: open rebuilds it by scanning.
            tracing::warn!(segment = %active.path.display(), error = %e, "could not write index file");
        }
        let path = self.dir.join(log_file_name(base));
        let file = self
            .storage
            .open_file(&path, true)
            .map_err(|e| LogError::io(&path, e))?;
        if let Err(e) = self.storage.sync_dir(&self.dir) {
            self.poisoned.store(true, Ordering::SeqCst);
            return Err(LogError::io(&self.dir, e));
        }
        tracing::debug!(segment = %path.display(), "rolled segment");
        self.segments.push(Segment::empty(&self.dir, base, file));
        Ok(())
    }

    /// fdatasync of the active segment; returns the offset up to which
    /// (exclusive) data is now durable. Sealed segments were synced when they
    /// were rolled. A failed fsync poisons the partition.
    pub fn sync(&self) -> Result<u64, LogError> {
        self.check_poisoned()?;
        let active = self.active();
        let durable = active.end_offset;
        if let Err(e) = active.file.sync_data() {
            tracing::error!(segment = %active.path.display(), error = %e, "fsync failed; poisoning partition");
            self.poisoned.store(true, Ordering::SeqCst);
            return Err(LogError::io(&active.path, e));
        }
        Ok(durable)
    }

    /// Records with offset in `[from, upto)`, at most `max_records` and about
    /// `max_bytes` of keys and values (always at least one record if any).
    /// Offsets below `start_offset()` read from `start_offset()`; quarantined
    /// offsets are skipped. Verifies the CRC of every batch read.
    ///
    /// A poisoned partition refuses reads too: after a failed fsync the page
    /// cache may hold data the disk does not, and serving it would let a
    /// consumer see records that a crash would take back.
    pub fn read(
        &self,
        from: u64,
        upto: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        self.check_poisoned()?;
        let from = from.max(self.start_offset());
        let upto = upto.min(self.next_offset());
        let mut out = Vec::new();
        if from >= upto || max_records == 0 {
            return Ok(out);
        }
        let max = self.config.batch_bytes_max;
        let mut bytes = 0usize;
        let first = self
            .segments
            .partition_point(|s| s.base_offset <= from)
            .saturating_sub(1);
        for seg in &self.segments[first..] {
            if seg.base_offset >= upto {
                break;
            }
            let (mut expected, mut pos) = match seg.index.lookup_offset(from) {
                Some(e) => (e.offset, e.position),
                None => (seg.base_offset, 0),
            };
            let mut reader = ChunkReader::new(&*seg.file, seg.size_bytes);
            while pos < seg.size_bytes {
                if let Some(q) = seg.quarantined_at(pos) {
                    pos = q.file_position + q.length;
                    expected = q.offsets.end;
                    continue;
                }
                let batch = reader
                    .decode_at(pos, max)
                    .map_err(|e| corrupt_or_io(seg, pos, e))?;
                if batch.header.base_offset != expected {
                    return Err(LogError::Corrupt {
                        segment: seg.path.clone(),
                        position: pos,
                        reason: format!(
                            "batch base offset {} where {expected} was expected",
                            batch.header.base_offset
                        ),
                    });
                }
                pos += u64::from(batch.header.length);
                expected = batch.header.end_offset();
                for r in batch.records {
                    if r.offset < from {
                        continue;
                    }
                    let size = r.value.len() + r.key.as_ref().map_or(0, |k| k.len());
                    if r.offset >= upto
                        || out.len() >= max_records
                        || (!out.is_empty() && bytes + size > max_bytes)
                    {
                        return Ok(out);
                    }
                    bytes += size;
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// First offset whose record timestamp is `>= ts_ms`, or `next_offset()`
    /// if none. Segments whose maximum timestamp is older are skipped whole;
    /// within the first segment that qualifies, the time index picks where to
    /// start scanning.
    pub fn offset_for_timestamp(&self, ts_ms: i64) -> Result<u64, LogError> {
        self.check_poisoned()?;
        let max = self.config.batch_bytes_max;
        for seg in &self.segments {
            if seg.max_timestamp_ms.is_none_or(|m| m < ts_ms) {
                continue;
            }
            let mut pos = seg.index.lookup_time(ts_ms);
            let mut reader = ChunkReader::new(&*seg.file, seg.size_bytes);
            while pos < seg.size_bytes {
                if let Some(q) = seg.quarantined_at(pos) {
                    pos = q.file_position + q.length;
                    continue;
                }
                // Skipped batches are CRC-checked too: a corrupt length would
                // otherwise send the scan into the middle of a batch.
                let header = reader
                    .validate_at(pos, max)
                    .map_err(|e| corrupt_or_io(seg, pos, e))?;
                if header.max_timestamp_ms >= ts_ms {
                    let batch = reader
                        .decode_at(pos, max)
                        .map_err(|e| corrupt_or_io(seg, pos, e))?;
                    if let Some(r) = batch.records.iter().find(|r| r.timestamp_ms >= ts_ms) {
                        return Ok(r.offset);
                    }
                }
                pos += u64::from(header.length);
            }
        }
        Ok(self.next_offset())
    }

    /// The largest record timestamp stored, if any record is.
    pub fn max_timestamp_ms(&self) -> Option<i64> {
        self.segments
            .iter()
            .filter_map(|s| s.max_timestamp_ms)
            .max()
    }

    /// The oldest offset still stored (or `next_offset()` when empty).
    pub fn start_offset(&self) -> u64 {
        self.segments[0].base_offset
    }

    /// The offset the next appended record will get.
    pub fn next_offset(&self) -> u64 {
        self.active().end_offset
    }

    /// Bytes of all segments' `.log` files (indexes not counted).
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size_bytes).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub fn quarantined(&self) -> &[Quarantined] {
        &self.quarantined
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Deletes whole sealed segments (never the active one) older than
    /// `max_age` or while the total size exceeds `max_bytes`, oldest first,
    /// stopping at the first segment that may stay (so the remaining offsets
    /// stay contiguous). Rolls the active segment first when it is older than
    /// `segment_age_ms_max` and non-empty, so a quiet partition's data can
    /// expire too. fsyncs the directory after deleting.
    pub fn enforce_retention(
        &mut self,
        now_ms: i64,
        retention: &Retention,
    ) -> Result<RetentionReport, LogError> {
        self.check_poisoned()?;
        if !self.active().is_empty() && self.is_too_old(self.active(), now_ms) {
            self.roll()?;
        }
        let mut report = RetentionReport::default();
        let mut total = self.size_bytes();
        let cutoff = retention
            .max_age_ms
            .map(|age| i128::from(now_ms) - i128::from(age));
        let mut result = Ok(());
        while self.segments.len() > 1 {
            let seg = &self.segments[0];
            let expired =
                cutoff.is_some_and(|c| seg.max_timestamp_ms.is_none_or(|m| i128::from(m) < c));
            let oversize = retention.max_bytes.is_some_and(|m| total > m);
            if !expired && !oversize {
                break;
            }
            // The .log first: once it is gone the segment is gone, and a crash
            // before its index and quarantine files follow leaves orphans that
            // open removes.
            if let Err(e) = self.storage.remove_file(&seg.path) {
                result = Err(LogError::io(&seg.path, e));
                break;
            }
            for name in [
                index_file_name(seg.base_offset),
                quarantine_file_name(seg.base_offset),
            ] {
                match self.storage.remove_file(&self.dir.join(&name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(file = %name, error = %e, "could not remove file of deleted segment")
                    }
                }
            }
            let seg = self.segments.remove(0);
            tracing::info!(segment = %seg.path.display(), bytes = seg.size_bytes, expired, "retention deleted segment");
            total -= seg.size_bytes;
            report.segments_deleted += 1;
            report.bytes_deleted += seg.size_bytes;
        }
        if report.segments_deleted > 0 {
            let start = self.start_offset();
            self.quarantined.retain(|q| q.segment_base_offset >= start);
            if let Err(e) = self.storage.sync_dir(&self.dir) {
                self.poisoned.store(true, Ordering::SeqCst);
                return Err(LogError::io(&self.dir, e));
            }
        }
        report.new_start_offset = self.start_offset();
        result.map(|()| report)
    }

    fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a partition always has an active segment")
    }

    fn check_poisoned(&self) -> Result<(), LogError> {
        if self.is_poisoned() {
            Err(LogError::Poisoned)
        } else {
            Ok(())
        }
    }
}

fn corrupt_or_io(seg: &Segment, position: u64, e: BatchReadError) -> LogError {
    match e {
        BatchReadError::Io(e) => LogError::io(&seg.path, e),
        BatchReadError::Decode(d) => LogError::Corrupt {
            segment: seg.path.clone(),
            position,
            reason: d.to_string(),
        },
    }
}

/// Writes `seg`'s index file and fsyncs it. Truncate-then-write is safe: a
/// crash in between leaves a file whose CRC fails, and open then scans.
fn write_index_file(storage: &dyn Storage, dir: &Path, seg: &Segment) -> io::Result<()> {
    let bytes = seg.to_index_file().encode();
    let file = storage.open_file(&dir.join(index_file_name(seg.base_offset)), true)?;
    file.set_len(0)?;
    file.write_all_at(&bytes, 0)?;
    file.sync_data()
}

/// Loads and checks the index file of a sealed segment against its `.log`:
/// same base offset, same length, and the last batch's header still carries
/// the recorded CRC. Any doubt is an `Err` and the segment is scanned instead.
fn load_index(
    storage: &dyn Storage,
    dir: &Path,
    base: u64,
    log: &dyn crate::storage::StorageFile,
    log_len: u64,
) -> Result<IndexFile, String> {
    let file = storage
        .open_file(&dir.join(index_file_name(base)), false)
        .map_err(|e| e.to_string())?;
    let len = file.len().map_err(|e| e.to_string())?;
    if len > log_len.saturating_add(INDEX_FILE_SLACK_BYTES) {
        return Err(format!("index of {len} bytes is implausibly large"));
    }
    let mut buf = vec![0u8; len as usize];
    read_exact_at(&*file, &mut buf, 0).map_err(|e| e.to_string())?;
    let idx = IndexFile::decode(&buf)?;
    if idx.base_offset != base || idx.log_bytes != log_len {
        return Err(format!(
            "index describes base {} with {} bytes, segment has base {base} with {log_len} bytes",
            idx.base_offset, idx.log_bytes
        ));
    }
    if let Some((pos, crc)) = idx.last_batch {
        let mut header = [0u8; batch::BATCH_HEADER_BYTES];
        read_exact_at(log, &mut header, pos).map_err(|e| e.to_string())?;
        if header[0] != batch::MAGIC_V1 || header[1..5] != crc.to_le_bytes() {
            return Err("last batch in the log does not match the index".into());
        }
    }
    Ok(idx)
}
