//! The log against an in-memory model, under random appends, syncs, reads,
//! crashes with torn tails, reopens and retention.
//!
//! The model is the contract in miniature: offsets are dense; after a crash
//! every synced record reads back identical at its offset, and unsynced
//! records may be lost only as a suffix; retention only moves the start.

use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::testing::{MemStorage, TornTail};
use crate::{Partition, PartitionConfig, Record, Retention};

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<(Option<Vec<u8>>, Vec<u8>)>),
    Sync,
    Read {
        from: u64,
        len: u64,
        max_records: usize,
        max_bytes: usize,
    },
    Crash(TornTail),
    Reopen,
    Retention {
        max_bytes: Option<u64>,
        max_age_ms: Option<u64>,
    },
    TimePasses(i64),
}

fn arb_op() -> impl Strategy<Value = Op> {
    let record = (
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        proptest::collection::vec(any::<u8>(), 0..40),
    );
    let torn = prop_oneof![
        Just(TornTail::None),
        (0usize..200).prop_map(TornTail::KeepPrefix),
        (1usize..100).prop_map(TornTail::Garbage),
    ];
    prop_oneof![
        10 => proptest::collection::vec(record, 1..5).prop_map(Op::Append),
        3 => Just(Op::Sync),
        4 => (0u64..200, 0u64..50, 0usize..10, 0usize..200)
            .prop_map(|(from, len, max_records, max_bytes)| Op::Read { from, len, max_records, max_bytes }),
        2 => torn.prop_map(Op::Crash),
        1 => Just(Op::Reopen),
        1 => (proptest::option::of(0u64..2000), proptest::option::of(0u64..200))
            .prop_map(|(max_bytes, max_age_ms)| Op::Retention { max_bytes, max_age_ms }),
        2 => (1i64..60).prop_map(Op::TimePasses),
    ]
}

fn config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes_max: 300,
        segment_age_ms_max: 100,
        index_interval_bytes: 64,
        batch_bytes_max: 4096,
    }
}

struct Harness {
    mem: Arc<MemStorage>,
    p: Option<Partition>,
    /// Every record ever appended and not lost, by offset (index = offset).
    model: Vec<Record>,
    start: u64,
    /// Everything below this offset was acknowledged by `sync`.
    synced: u64,
    now: i64,
}

impl Harness {
    fn p(&mut self) -> &mut Partition {
        self.p.as_mut().expect("open")
    }

    fn check_all(&mut self) {
        let (start, model_len) = (self.start, self.model.len() as u64);
        let p = self.p();
        assert_eq!((p.start_offset(), p.next_offset()), (start, model_len));
        let all = read_all(p);
        assert_eq!(all.len() as u64, model_len - start, "dense offsets");
        for r in &all {
            let want = &self.model[r.offset as usize];
            assert_eq!(
                (r.timestamp_ms, &r.key, &r.value),
                (want.timestamp_ms, &want.key, &want.value),
                "offset {}",
                r.offset
            );
        }
    }

    fn reopen(&mut self, crashed: bool) {
        let (p, report) = Partition::open(self.mem.clone(), dir(), config(), self.now).unwrap();
        assert!(
            report.quarantined.is_empty(),
            "a crash must never look like corruption: {:?}",
            report.quarantined
        );
        let next = p.next_offset();
        assert!(
            next >= self.synced,
            "synced records lost: next {next} < synced {}",
            self.synced
        );
        assert!(
            next <= self.model.len() as u64,
            "records appeared from nowhere"
        );
        if !crashed {
            assert_eq!(next, self.model.len() as u64);
            assert_eq!(report.truncated_bytes, 0);
        }
        assert_eq!(
            p.start_offset(),
            self.start,
            "retention is durable, and nothing else moves the start"
        );
        // Lost records are a suffix; what survived is now on disk.
        self.model.truncate(next as usize);
        self.synced = next;
        self.p = Some(p);
        self.check_all();
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Append(recs) => {
                let now = self.now;
                let recs: Vec<Record> = recs
                    .into_iter()
                    .map(|(k, v)| Record {
                        timestamp_ms: now,
                        key: k.map(Bytes::from),
                        value: Bytes::from(v),
                    })
                    .collect();
                let next = self.model.len() as u64;
                let range = self.p().append(&recs, now).unwrap();
                assert_eq!(range, next..next + recs.len() as u64);
                self.model.extend(recs);
            }
            Op::Sync => {
                let durable = self.p().sync().unwrap();
                assert_eq!(durable, self.model.len() as u64);
                self.synced = durable;
            }
            Op::Read {
                from,
                len,
                max_records,
                max_bytes,
            } => {
                let (start, end) = (self.start, self.model.len() as u64);
                let got = self
                    .p()
                    .read(from, from + len, max_records, max_bytes)
                    .unwrap();
                let first = from.max(start);
                let upto = (from + len).min(end);
                if first < upto && max_records > 0 {
                    assert!(!got.is_empty(), "at least one record when any is in range");
                }
                assert!(got.len() <= max_records);
                for (i, r) in got.iter().enumerate() {
                    assert_eq!(r.offset, first + i as u64);
                    assert!(r.offset < upto);
                    let want = &self.model[r.offset as usize];
                    assert_eq!(
                        (&r.key, &r.value, r.timestamp_ms),
                        (&want.key, &want.value, want.timestamp_ms)
                    );
                }
                let bytes: usize = got
                    .iter()
                    .map(|r| r.value.len() + r.key.as_ref().map_or(0, |k| k.len()))
                    .sum();
                assert!(got.len() <= 1 || bytes <= max_bytes);
            }
            Op::Crash(torn) => {
                self.p = None;
                self.mem.crash(torn);
                self.reopen(true);
            }
            Op::Reopen => {
                self.p = None;
                self.reopen(false);
            }
            Op::Retention {
                max_bytes,
                max_age_ms,
            } => {
                let now = self.now;
                let report = self
                    .p()
                    .enforce_retention(
                        now,
                        &Retention {
                            max_age_ms,
                            max_bytes,
                        },
                    )
                    .unwrap();
                let start = self.p().start_offset();
                assert_eq!(report.new_start_offset, start);
                assert!(start >= self.start && start <= self.model.len() as u64);
                self.start = start;
                if let Some(m) = max_bytes
                    && self.p().segment_count() > 1
                {
                    assert!(self.p().size_bytes() <= m, "retention left too many bytes");
                }
            }
            Op::TimePasses(ms) => self.now += ms,
        }
    }
}

proptest! {
    // 256 cases by default; PROPTEST_CASES=N runs more.
    #[test]
    fn log_matches_model(ops in proptest::collection::vec(arb_op(), 1..80)) {
        let mem = MemStorage::new();
        let (p, _) = Partition::open(mem.clone(), dir(), config(), 0).unwrap();
        let mut h = Harness { mem, p: Some(p), model: Vec::new(), start: 0, synced: 0, now: 1_000 };
        for op in ops {
            h.apply(op);
        }
        h.check_all();
        // Finally: sync, crash, and everything must still be there.
        h.apply(Op::Sync);
        let len = h.model.len();
        h.apply(Op::Crash(TornTail::Garbage(13)));
        prop_assert_eq!(h.model.len(), len);
    }
}
