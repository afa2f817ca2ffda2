//! Recovery: rebuilding a segment's state by scanning it, cutting a torn tail,
//! and quarantining corruption that valid data follows.
//!
//! The two kinds of damage need opposite answers. A crash tears the *end* of
//! the last segment: those bytes were never acknowledged as durable (group
//! commit acknowledges only after `sync`), so cutting them is correct. Damage
//! *followed by valid data* is bit rot or a bug: dropping everything after it
//! would destroy acknowledged records, so the damaged range is copied aside,
//! its offsets are recorded as quarantined, and the data after it stays
//! readable. Telling the two apart needs a resync: scan forward for a byte
//! position that holds a batch with the right magic, a bounded length, a
//! valid CRC and a base offset that fits after the damage.

use std::path::Path;

use crate::Quarantined;
use crate::batch::BatchHeader;
use crate::config::PartitionConfig;
use crate::error::LogError;
use crate::segment::{BatchReadError, ChunkReader, Segment, quarantine_file_name};
use crate::storage::Storage;

/// What scanning one segment found.
#[derive(Debug, Default)]
pub(crate) struct ScanOutcome {
    /// For the last segment: bytes cut from its end.
    pub truncated_bytes: u64,
    /// True when new quarantined ranges were found (so the quarantine file
    /// must be written).
    pub found_quarantine: bool,
}

/// Scans `seg` (which must be fresh: empty state at its base offset) over
/// `file_len` bytes, filling its index and summary.
///
/// `next_base` is the base offset of the following segment, `None` for the
/// last one: only the last segment may lose a tail, because every sealed
/// segment was fsynced whole before the next one was created.
pub(crate) fn scan_segment(
    seg: &mut Segment,
    file_len: u64,
    next_base: Option<u64>,
    config: &PartitionConfig,
) -> Result<ScanOutcome, LogError> {
    assert!(
        seg.is_empty() && seg.end_offset == seg.base_offset,
        "scan of a non-fresh segment"
    );
    let max = config.batch_bytes_max;
    let mut out = ScanOutcome::default();
    let mut reader = ChunkReader::new(&*seg.file, file_len);
    let mut pos = 0u64;
    let mut batches: Vec<(u64, BatchHeader)> = Vec::new();
    let mut next = seg.base_offset;
    let io_err = |e| LogError::io(seg.path.clone(), e);
    while pos < file_len {
        let failure = match reader.validate_at(pos, max) {
            Ok(h) if h.base_offset == next && next_base.is_none_or(|nb| h.end_offset() <= nb) => {
                batches.push((pos, h));
                pos += u64::from(h.length);
                next = h.end_offset();
                continue;
            }
            Ok(h) => format!(
                "batch base offset {} where {next} was expected",
                h.base_offset
            ),
            Err(BatchReadError::Decode(e)) => e.to_string(),
            Err(BatchReadError::Io(e)) => return Err(io_err(e)),
        };
        match resync(&mut reader, pos, next, next_base, max).map_err(io_err)? {
            Some((found, h)) => {
                out.found_quarantine = true;
                tracing::warn!(segment = %seg.path.display(), position = pos, length = found - pos, offsets = ?(next..h.base_offset), %failure, "quarantining corrupt range followed by valid data");
                seg.quarantined.push(Quarantined {
                    segment_base_offset: seg.base_offset,
                    file_position: pos,
                    length: found - pos,
                    offsets: next..h.base_offset,
                    reason: failure,
                });
                batches.push((found, h));
                pos = found + u64::from(h.length);
                next = h.end_offset();
            }
            None => match next_base {
                None => {
                    out.truncated_bytes = file_len - pos;
                    tracing::warn!(segment = %seg.path.display(), position = pos, bytes = out.truncated_bytes, %failure, "truncating torn tail");
                    break;
                }
                Some(nb) => {
                    // A sealed segment's damaged tail: the next segment says
                    // which offsets it held.
                    out.found_quarantine = true;
                    tracing::warn!(segment = %seg.path.display(), position = pos, %failure, "quarantining corrupt tail of a sealed segment");
                    seg.quarantined.push(Quarantined {
                        segment_base_offset: seg.base_offset,
                        file_position: pos,
                        length: file_len - pos,
                        offsets: next..nb.max(next),
                        reason: failure,
                    });
                    next = nb.max(next);
                    pos = file_len;
                }
            },
        }
    }
    drop(reader);
    // Replay what the scan accepted, in order, with the quarantined ranges
    // accounted for between batches.
    let interval = config.index_interval_bytes;
    let quarantined = seg.quarantined.clone();
    let mut q = quarantined.iter().peekable();
    for (p, h) in batches {
        while let Some(range) = q.next_if(|r| r.file_position < p) {
            skip_range(seg, range);
        }
        seg.on_batch(p, &h, interval);
    }
    for range in q {
        skip_range(seg, range);
    }
    debug_assert_eq!(seg.end_offset, next);
    debug_assert_eq!(seg.size_bytes, pos.min(file_len));
    Ok(out)
}

fn skip_range(seg: &mut Segment, range: &Quarantined) {
    assert_eq!(
        range.file_position, seg.size_bytes,
        "quarantined range not at the segment's end"
    );
    seg.size_bytes += range.length;
    seg.end_offset = range.offsets.end;
}

/// Looks for the first position after `from` that holds a valid batch that
/// fits after offset `next`: its base offset is at least `next`, at most one
/// offset per skipped byte beyond it (every record takes at least a byte), and
/// it ends before the next segment begins.
fn resync(
    reader: &mut ChunkReader<'_>,
    from: u64,
    next: u64,
    next_base: Option<u64>,
    batch_bytes_max: u32,
) -> std::io::Result<Option<(u64, BatchHeader)>> {
    let end = reader.end();
    let mut q = from + 1;
    while q < end {
        let is_magic = reader
            .get(q, 1)?
            .is_some_and(|b| b[0] == crate::batch::MAGIC_V1);
        if is_magic {
            // Check the cheap header fields before hashing up to
            // `batch_bytes_max` bytes: in random garbage almost every candidate
            // fails here.
            let fits = |h: &BatchHeader| {
                h.base_offset >= next
                    && h.base_offset - next <= q - from
                    && next_base.is_none_or(|nb| h.end_offset() <= nb)
            };
            match reader.header_at(q, batch_bytes_max) {
                Ok(h) if fits(&h) => match reader.validate_at(q, batch_bytes_max) {
                    Ok(h) => return Ok(Some((q, h))),
                    Err(BatchReadError::Io(e)) => return Err(e),
                    Err(BatchReadError::Decode(_)) => {}
                },
                Ok(_) | Err(BatchReadError::Decode(_)) => {}
                Err(BatchReadError::Io(e)) => return Err(e),
            }
        }
        q += 1;
    }
    Ok(None)
}

/// Copies the quarantined bytes of `seg` into `{base:020}.quarantine`, back to
/// back in file order, so an operator can inspect them; the ranges' positions
/// in the `.log` are in [`Partition::quarantined`](crate::Partition::quarantined).
/// Rewritten whole, so reopening the same damaged segment stays idempotent.
pub(crate) fn write_quarantine_file(
    storage: &dyn Storage,
    dir: &Path,
    seg: &Segment,
) -> std::io::Result<()> {
    let path = dir.join(quarantine_file_name(seg.base_offset));
    let out = storage.open_file(&path, true)?;
    out.set_len(0)?;
    let mut reader = ChunkReader::new(&*seg.file, seg.size_bytes);
    let mut at = 0u64;
    for q in seg.quarantined.iter().filter(|q| q.length > 0) {
        let mut pos = q.file_position;
        let end = q.file_position + q.length;
        while pos < end {
            let n = (end - pos).min(crate::segment::READ_CHUNK_BYTES as u64) as usize;
            let bytes = reader
                .get(pos, n)?
                .ok_or_else(|| std::io::Error::other("quarantined range past the segment"))?;
            out.write_all_at(bytes, at)?;
            at += n as u64;
            pos += n as u64;
        }
    }
    out.sync_data()
}
