//! One live stream: its partitions (each a `sluice-log` partition behind a
//! reader/writer lock), its writer thread, its de-duplication window and the
//! signal that wakes long-polling consumers. The broker owns the threads that
//! do the log's blocking I/O; the log itself knows nothing about them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sluice_core::{Message, TenantId, TopicName};
use sluice_log::{FsStorage, Partition, PartitionConfig, Retention, StoredRecord};
use tokio::sync::{mpsc, oneshot, watch};

use crate::dedup::{DedupWindow, Seen};
use crate::metrics::{NodeMetrics, StreamMetrics};
use crate::options::{FsyncPolicy, StreamSpec};
use crate::writer::{self, WriterCmd};

/// Records read per step while rebuilding the de-duplication window.
const DEDUP_REBUILD_CHUNK: usize = 4096;

/// A partition and the end offset readers may see: with `fsync = "always"`
/// that is the durable end, so no reader ever sees a message that a crash
/// could take back; with the other policies it is the written end.
#[derive(Debug)]
pub struct PartitionHandle {
    pub log: RwLock<Partition>,
    pub visible_end: AtomicU64,
}

impl PartitionHandle {
    pub fn visible_end(&self) -> u64 {
        self.visible_end.load(Ordering::Acquire)
    }

    pub fn start_offset(&self) -> u64 {
        self.log.read().expect("partition lock").start_offset()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("stream storage failed: {0}")]
    Storage(String),
    #[error("stream is shutting down")]
    Closed,
}

/// Where one message landed in one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendAck {
    pub partition: u32,
    pub offset: u64,
    /// The message id was seen within the window; nothing was appended.
    pub duplicate: bool,
}

/// The parts of a stream's definition that may change while it runs.
#[derive(Debug, Clone)]
pub struct MutableSpec {
    pub subjects: Vec<sluice_core::TopicFilter>,
    pub retention: Retention,
}

pub struct Stream {
    pub tenant: TenantId,
    /// The definition it was opened with; [`Stream::mutable`] holds the live subjects and retention.
    pub spec: StreamSpec,
    pub mutable: RwLock<MutableSpec>,
    pub dir: PathBuf,
    pub partitions: Vec<Arc<PartitionHandle>>,
    /// The writer thread's mailbox; bounded by `queue_messages_max`.
    tx: mpsc::Sender<WriterCmd>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub metrics: Arc<StreamMetrics>,
    /// Bumped after every batch becomes visible, to wake long-polls.
    pub changed: watch::Sender<u64>,
}

/// The stream's key in metadata: `tenant/stream`.
pub fn stream_key(tenant: &TenantId, name: &str) -> String {
    format!("{tenant}/{name}")
}

/// FNV-1a, 64-bit: a stable hash, so a key maps to the same partition in
/// every version of Sluice (a std `Hasher` promises no such thing).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Stream {
    /// Opens every partition (recovering them), rebuilds the de-duplication
    /// window from the log's tail and starts the writer thread. Blocking.
    pub fn open(
        tenant: TenantId,
        spec: StreamSpec,
        dir: &Path,
        node_metrics: Arc<NodeMetrics>,
        runtime: &tokio::runtime::Handle,
        down_since_ms: Option<i64>,
    ) -> anyhow::Result<Arc<Stream>> {
        let storage: Arc<dyn sluice_log::Storage> = Arc::new(FsStorage);
        let config = PartitionConfig {
            segment_bytes_max: spec.segment_bytes_max,
            segment_age_ms_max: spec.segment_age_ms_max,
            ..PartitionConfig::default()
        };
        let now = now_ms();
        let mut partitions = Vec::with_capacity(spec.partitions as usize);
        for p in 0..spec.partitions {
            let pdir = dir.join(p.to_string());
            let (log, report) = Partition::open(storage.clone(), &pdir, config.clone(), now)
                .map_err(|e| anyhow::anyhow!("opening {}: {e}", pdir.display()))?;
            if report.truncated_bytes > 0 {
                tracing::warn!(stream = %spec.name, partition = p, bytes = report.truncated_bytes, "truncated a torn tail");
            }
            for q in &report.quarantined {
                tracing::error!(stream = %spec.name, partition = p, offsets = ?q.offsets, reason = %q.reason,
                    "quarantined a corrupt batch; the data after it is kept");
            }
            let end = log.next_offset();
            partitions.push(Arc::new(PartitionHandle {
                log: RwLock::new(log),
                visible_end: AtomicU64::new(end),
            }));
        }
        let mut dedup = DedupWindow::new(spec.dedup_window_ms, spec.dedup_ids_max);
        rebuild_dedup(&mut dedup, &partitions, down_since_ms, now)?;

        let (tx, rx) = mpsc::channel(spec.queue_messages_max);
        let (changed, _) = watch::channel(0);
        let metrics = Arc::new(StreamMetrics::default());
        let writer = writer::spawn(
            spec.name.to_string(),
            spec.fsync,
            partitions.clone(),
            dedup,
            rx,
            changed.clone(),
            metrics.clone(),
            node_metrics,
        )?;
        if let FsyncPolicy::IntervalMs(ms) = spec.fsync {
            let tick_tx = tx.clone();
            runtime.spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_millis(ms));
                loop {
                    interval.tick().await;
                    if let Err(mpsc::error::TrySendError::Closed(_)) =
                        tick_tx.try_send(WriterCmd::Tick)
                    {
                        break;
                    }
                }
            });
        }
        let mutable = MutableSpec {
            subjects: spec.subjects.clone(),
            retention: Retention {
                max_age_ms: spec.retention_max_age_ms,
                max_bytes: spec.retention_max_bytes,
            },
        };
        Ok(Arc::new(Stream {
            tenant,
            spec,
            mutable: RwLock::new(mutable),
            dir: dir.to_owned(),
            partitions,
            tx,
            writer: Mutex::new(Some(writer)),
            metrics,
            changed,
        }))
    }

    pub fn name(&self) -> &str {
        self.spec.name.as_str()
    }

    pub fn key(&self) -> String {
        stream_key(&self.tenant, self.name())
    }

    pub fn matches(&self, topic: &TopicName) -> bool {
        self.mutable
            .read()
            .expect("spec lock")
            .subjects
            .iter()
            .any(|f| f.matches(topic))
    }

    /// The partition a message goes to: by key, or by topic when it has none,
    /// so order holds per key.
    pub fn partition_for(&self, msg: &Message) -> u32 {
        let h = match &msg.key {
            Some(k) => fnv1a(k),
            None => fnv1a(msg.topic.as_str().as_bytes()),
        };
        (h % u64::from(self.spec.partitions)) as u32
    }

    /// Takes a place in the writer's queue without waiting; `None` when the
    /// queue is full (the producer gets 429) or the stream is closing.
    pub fn try_reserve(
        &self,
    ) -> Result<mpsc::Permit<'_, WriterCmd>, mpsc::error::TrySendError<()>> {
        self.tx.try_reserve()
    }

    /// Builds the command for `msg`; send it through a permit, await the reply.
    pub fn append_cmd(
        &self,
        msg: &Message,
    ) -> (WriterCmd, oneshot::Receiver<Result<AppendAck, AppendError>>) {
        let (reply, rx) = oneshot::channel();
        let partition = self.partition_for(msg);
        let record = sluice_log::Record {
            timestamp_ms: msg.timestamp_ms,
            key: msg.key.clone(),
            value: msg.encode_value(),
        };
        (
            WriterCmd::Append(writer::AppendReq {
                partition,
                record,
                msg_id: msg.msg_id.clone(),
                reply,
            }),
            rx,
        )
    }

    /// Reads visible records of one partition. Blocking (disk reads).
    pub fn read(
        &self,
        partition: u32,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, sluice_log::LogError> {
        let p = &self.partitions[partition as usize];
        let upto = p.visible_end();
        p.log
            .read()
            .expect("partition lock")
            .read(from, upto, max_records, max_bytes)
    }

    /// First offset at or after `ts_ms` in one partition. Blocking.
    pub fn offset_for_time(&self, partition: u32, ts_ms: i64) -> Result<u64, sluice_log::LogError> {
        let p = &self.partitions[partition as usize];
        let o = p
            .log
            .read()
            .expect("partition lock")
            .offset_for_timestamp(ts_ms)?;
        Ok(o.min(p.visible_end()))
    }

    /// Deletes whole segments past retention. Blocking.
    pub fn enforce_retention(&self, now_ms: i64) {
        let retention = self.mutable.read().expect("spec lock").retention.clone();
        for (i, p) in self.partitions.iter().enumerate() {
            let report = p
                .log
                .write()
                .expect("partition lock")
                .enforce_retention(now_ms, &retention);
            match report {
                Ok(r) if r.segments_deleted > 0 => {
                    tracing::info!(stream = %self.spec.name, partition = i,
                    segments = r.segments_deleted, bytes = r.bytes_deleted, start_offset = r.new_start_offset, "retention deleted segments")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(stream = %self.spec.name, partition = i, error = %e, "retention failed")
                }
            }
        }
    }

    /// Stops the writer after it has finished (and synced) what it holds. Blocking.
    pub fn shutdown(&self) {
        let (done, rx) = std::sync::mpsc::channel();
        if self.tx.blocking_send(WriterCmd::Shutdown(done)).is_ok() {
            let _ = rx.recv();
        }
        if let Some(h) = self.writer.lock().expect("writer lock").take() {
            let _ = h.join();
        }
    }
}

/// Refills the idempotent-publish window from the log's tail at start-up,
/// as it stood when the node stopped: at `down_since_ms` (the last
/// heartbeat of the previous run) or the stream's last append, whichever
/// is later.
fn rebuild_dedup(
    dedup: &mut DedupWindow,
    partitions: &[Arc<PartitionHandle>],
    down_since_ms: Option<i64>,
    now: i64,
) -> anyhow::Result<()> {
    if !dedup.is_enabled() {
        return Ok(());
    }
    // Time the node was down does not count: the window is rebuilt as it
    // stood when the node stopped, and that history is moved forward to
    // now. So a producer retrying (or a pipeline re-running its uncommitted
    // batch) after an outage of any length is still recognised, while ids
    // that expired as the node ran idle stay expired.
    let last_append = partitions
        .iter()
        .filter_map(|h| h.log.read().expect("partition lock").max_timestamp_ms())
        .max();
    let Some(last_append) = last_append else {
        return Ok(());
    };
    let last = down_since_ms.map_or(last_append, |d| d.max(last_append));
    let downtime = now.saturating_sub(last).max(0);
    let mut seen = Vec::new();
    for (p, handle) in partitions.iter().enumerate() {
        let log = handle.log.read().expect("partition lock");
        let mut from = log.offset_for_timestamp(dedup.horizon(last))?;
        let end = log.next_offset();
        while from < end {
            let records = log.read(from, end, DEDUP_REBUILD_CHUNK, 8 << 20)?;
            let Some(last) = records.last() else { break };
            from = last.offset + 1;
            for r in &records {
                if let Some(id) = Message::peek_msg_id(&r.value) {
                    seen.push((
                        r.timestamp_ms.saturating_add(downtime),
                        id,
                        Seen {
                            partition: p as u32,
                            offset: r.offset,
                        },
                    ));
                }
            }
        }
    }
    // The window expires ids in arrival order; partitions interleave in time.
    seen.sort_by_key(|(ts, _, s)| (*ts, s.partition, s.offset));
    for (ts, id, s) in seen {
        dedup.insert(id, s, ts);
    }
    Ok(())
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
