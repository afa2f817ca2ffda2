//! A stream's writer thread: the only code that appends to the stream's
//! partitions. It takes whatever appends are waiting, writes each partition's
//! share as one batch, syncs once per touched partition (group commit: one
//! fdatasync acknowledges every producer that was waiting), and only then
//! replies. A named std thread, as rumqttd runs its router, because the log
//! does blocking I/O and must not stall tokio's reactor.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sluice_log::{LogError, Record};
use tokio::sync::{mpsc, oneshot, watch};

use crate::dedup::{DedupWindow, Seen};
use crate::metrics::{NodeMetrics, StreamMetrics};
use crate::options::FsyncPolicy;
use crate::stream::{AppendAck, AppendError, PartitionHandle, now_ms};

/// Appends folded into one turn at most, so replies to early producers are
/// not held back indefinitely by a flood behind them.
const WRITER_BATCH_MESSAGES_MAX: usize = 4096;
/// Bytes of payload folded into one turn at most.
const WRITER_BATCH_BYTES_MAX: usize = 16 << 20;

pub struct AppendReq {
    pub partition: u32,
    pub record: Record,
    pub msg_id: Option<String>,
    pub reply: oneshot::Sender<Result<AppendAck, AppendError>>,
}

pub enum WriterCmd {
    Append(AppendReq),
    /// Time to sync, for the `interval` policy.
    Tick,
    /// Finish what is queued, sync, and stop; signal on the sender.
    Shutdown(std::sync::mpsc::Sender<()>),
}

struct Writer {
    stream: String,
    policy: FsyncPolicy,
    partitions: Vec<Arc<PartitionHandle>>,
    dedup: DedupWindow,
    changed: watch::Sender<u64>,
    metrics: Arc<StreamMetrics>,
    node: Arc<NodeMetrics>,
    /// Partitions written since their last sync (for the non-`always` policies).
    dirty: Vec<bool>,
    last_sync: Instant,
}

#[allow(clippy::too_many_arguments)]
pub fn spawn(
    stream: String,
    policy: FsyncPolicy,
    partitions: Vec<Arc<PartitionHandle>>,
    dedup: DedupWindow,
    rx: mpsc::Receiver<WriterCmd>,
    changed: watch::Sender<u64>,
    metrics: Arc<StreamMetrics>,
    node: Arc<NodeMetrics>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let dirty = vec![false; partitions.len()];
    let mut w = Writer {
        stream: stream.clone(),
        policy,
        partitions,
        dedup,
        changed,
        metrics,
        node,
        dirty,
        last_sync: Instant::now(),
    };
    std::thread::Builder::new()
        .name(format!("sluice-writer-{stream}"))
        .spawn(move || w.run(rx))
}

/// What becomes of one request of the batch.
enum Outcome {
    Pending,
    Done(Result<AppendAck, AppendError>),
    /// Same id as an earlier request of this batch: answer as that one is answered.
    SameAs(usize),
}

impl Writer {
    fn run(&mut self, mut rx: mpsc::Receiver<WriterCmd>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = Vec::new();
            let mut bytes = 0;
            let mut shutdown = None;
            let mut push = |cmd: WriterCmd, batch: &mut Vec<AppendReq>, bytes: &mut usize| match cmd
            {
                WriterCmd::Append(req) => {
                    *bytes += req.record.value.len();
                    batch.push(req);
                }
                WriterCmd::Tick => {}
                WriterCmd::Shutdown(done) => shutdown = Some(done),
            };
            push(first, &mut batch, &mut bytes);
            while batch.len() < WRITER_BATCH_MESSAGES_MAX && bytes < WRITER_BATCH_BYTES_MAX {
                match rx.try_recv() {
                    Ok(cmd) => push(cmd, &mut batch, &mut bytes),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.write_batch(batch);
            }
            if let Some(done) = shutdown {
                self.sync_dirty();
                let _ = done.send(());
                return;
            }
            if let FsyncPolicy::IntervalMs(ms) = self.policy
                && self.last_sync.elapsed() >= Duration::from_millis(ms)
            {
                self.sync_dirty();
            }
        }
        self.sync_dirty();
    }

    fn write_batch(&mut self, batch: Vec<AppendReq>) {
        let now = now_ms();
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(batch.len());
        let mut ids_in_batch: HashMap<&str, usize> = HashMap::new();
        let mut by_partition: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, req) in batch.iter().enumerate() {
            let outcome = match req.msg_id.as_deref() {
                Some(id) if ids_in_batch.contains_key(id) => Outcome::SameAs(ids_in_batch[id]),
                Some(id) => match self.dedup.get(id, now) {
                    Some(seen) => Outcome::Done(Ok(AppendAck {
                        partition: seen.partition,
                        offset: seen.offset,
                        duplicate: true,
                    })),
                    None => {
                        ids_in_batch.insert(id, i);
                        Outcome::Pending
                    }
                },
                None => Outcome::Pending,
            };
            if matches!(outcome, Outcome::Pending) {
                by_partition.entry(req.partition).or_default().push(i);
            }
            outcomes.push(outcome);
        }

        // Phase 1: write each partition's share as one batch.
        let mut appended: Vec<(u32, Result<std::ops::Range<u64>, LogError>)> =
            Vec::with_capacity(by_partition.len());
        for (&p, idxs) in &by_partition {
            let records: Vec<Record> = idxs
                .iter()
                .map(|&i| Record {
                    timestamp_ms: now,
                    ..batch[i].record.clone()
                })
                .collect();
            let result = self.partitions[p as usize]
                .log
                .write()
                .expect("partition lock")
                .append(&records, now);
            if let Ok(range) = &result {
                debug_assert_eq!(range.end - range.start, idxs.len() as u64);
            }
            appended.push((p, result));
        }
        // Phase 2: make them durable (or visible), one sync per partition.
        let to_sync: Vec<u32> = appended
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(p, _)| *p)
            .collect();
        let mut synced: Vec<Option<Result<u64, LogError>>> = if self.policy == FsyncPolicy::Always {
            self.sync_partitions(&to_sync)
                .into_iter()
                .map(Some)
                .collect()
        } else {
            Vec::new()
        };
        for ((p, result), idxs) in appended.into_iter().zip(by_partition.values()) {
            let handle = &self.partitions[p as usize];
            let result = result.and_then(|range| {
                if self.policy == FsyncPolicy::Always {
                    let i = to_sync
                        .iter()
                        .position(|q| *q == p)
                        .expect("synced partition");
                    let durable = synced[i].take().expect("one sync result per partition")?;
                    debug_assert!(durable >= range.end);
                    handle.visible_end.store(durable, Ordering::Release);
                } else {
                    self.dirty[p as usize] = true;
                    handle.visible_end.store(range.end, Ordering::Release);
                }
                Ok(range.start)
            });
            match result {
                Ok(start) => {
                    for (k, &i) in idxs.iter().enumerate() {
                        let offset = start + k as u64;
                        if let Some(id) = &batch[i].msg_id {
                            self.dedup.insert(
                                id.clone(),
                                Seen {
                                    partition: p,
                                    offset,
                                },
                                now,
                            );
                        }
                        self.metrics.appends.fetch_add(1, Ordering::Relaxed);
                        self.metrics
                            .append_bytes
                            .fetch_add(batch[i].record.value.len() as u64, Ordering::Relaxed);
                        outcomes[i] = Outcome::Done(Ok(AppendAck {
                            partition: p,
                            offset,
                            duplicate: false,
                        }));
                    }
                }
                Err(e) => {
                    tracing::error!(stream = %self.stream, partition = p, error = %e, "append failed");
                    let err = AppendError::Storage(e.to_string());
                    for &i in idxs {
                        self.metrics.append_errors.fetch_add(1, Ordering::Relaxed);
                        outcomes[i] = Outcome::Done(Err(err.clone()));
                    }
                }
            }
        }
        self.changed.send_modify(|v| *v = v.wrapping_add(1));

        let resolved: Vec<Option<Result<AppendAck, AppendError>>> = outcomes
            .iter()
            .map(|o| match o {
                Outcome::Done(r) => Some(r.clone()),
                _ => None,
            })
            .collect();
        for (i, (req, outcome)) in batch.into_iter().zip(outcomes).enumerate() {
            let result = match outcome {
                Outcome::Done(r) => r,
                Outcome::SameAs(j) => {
                    resolved[j]
                        .clone()
                        .expect("original resolved")
                        .map(|a| AppendAck {
                            duplicate: true,
                            ..a
                        })
                }
                Outcome::Pending => unreachable!("request {i} left pending"),
            };
            if let Ok(AppendAck {
                duplicate: true, ..
            }) = result
            {
                self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            let _ = req.reply.send(result);
        }
    }

    fn sync_partition(&mut self, p: u32) -> Result<u64, LogError> {
        let result = sync_one(&self.partitions[p as usize], &self.node);
        self.dirty[p as usize] = false;
        result
    }

    /// Syncs several partitions at once: their files are independent, and the
    /// device serves concurrent flushes in about the time of one, so a batch
    /// touching four partitions waits for one fsync rather than four in a row.
    fn sync_partitions(&mut self, ps: &[u32]) -> Vec<Result<u64, LogError>> {
        for &p in ps {
            self.dirty[p as usize] = false;
        }
        if let [p] = ps {
            return vec![sync_one(&self.partitions[*p as usize], &self.node)];
        }
        let (partitions, node) = (&self.partitions, &self.node);
        std::thread::scope(|scope| {
            let handles: Vec<_> = ps
                .iter()
                .map(|&p| scope.spawn(move || sync_one(&partitions[p as usize], node)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("sync thread does not panic"))
                .collect()
        })
    }

    fn sync_dirty(&mut self) {
        self.last_sync = Instant::now();
        for p in 0..self.partitions.len() {
            if self.dirty[p]
                && let Err(e) = self.sync_partition(p as u32)
            {
                tracing::error!(stream = %self.stream, partition = p, error = %e, "periodic sync failed");
            }
        }
    }
}

/// One timed fdatasync of a partition's active segment.
fn sync_one(handle: &PartitionHandle, node: &NodeMetrics) -> Result<u64, LogError> {
    let started = Instant::now();
    let result = handle.log.read().expect("partition lock").sync();
    node.fsyncs.fetch_add(1, Ordering::Relaxed);
    node.fsync_latency.observe(started.elapsed());
    result
}
