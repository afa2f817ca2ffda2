//! The idempotent-publish window of one stream: which `Sluice-Msg-Id`s were
//! appended recently, and where. It is state derived from the log (each record
//! carries its id), so it is rebuilt from the log's tail at start-up instead of
//! being written anywhere a second time — the way NATS JetStream does it.

use std::collections::{HashMap, VecDeque};

/// Where an id's first copy landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub partition: u32,
    pub offset: u64,
}

/// Ids remembered for `window_ms`, at most `ids_max` of them (oldest forgotten first).
#[derive(Debug)]
pub struct DedupWindow {
    window_ms: u64,
    ids_max: usize,
    by_id: HashMap<String, (Seen, i64)>,
    /// Arrival order, for expiry; an id appears once.
    order: VecDeque<(i64, String)>,
}

impl DedupWindow {
    pub fn new(window_ms: u64, ids_max: usize) -> Self {
        Self {
            window_ms,
            ids_max,
            by_id: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.window_ms > 0 && self.ids_max > 0
    }

    /// Where `id` was appended, if it still is in the window.
    pub fn get(&mut self, id: &str, now_ms: i64) -> Option<Seen> {
        self.expire(now_ms);
        self.by_id.get(id).map(|(seen, _)| *seen)
    }

    pub fn insert(&mut self, id: String, seen: Seen, timestamp_ms: i64) {
        if !self.is_enabled() || self.by_id.contains_key(&id) {
            return;
        }
        self.by_id.insert(id.clone(), (seen, timestamp_ms));
        self.order.push_back((timestamp_ms, id));
        while self.order.len() > self.ids_max {
            self.pop_oldest();
        }
    }

    /// The earliest timestamp still inside the window at `now_ms`.
    pub fn horizon(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(self.window_ms as i64)
    }

    fn expire(&mut self, now_ms: i64) {
        let horizon = self.horizon(now_ms);
        while self.order.front().is_some_and(|(ts, _)| *ts < horizon) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((_, id)) = self.order.pop_front() {
            self.by_id.remove(&id);
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_within_the_window_and_forgets_after() {
        let mut w = DedupWindow::new(1_000, 10);
        w.insert(
            "a".into(),
            Seen {
                partition: 0,
                offset: 5,
            },
            100,
        );
        assert_eq!(
            w.get("a", 500),
            Some(Seen {
                partition: 0,
                offset: 5
            })
        );
        assert_eq!(w.get("a", 1_101), None);
    }

    #[test]
    fn is_bounded_in_ids() {
        let mut w = DedupWindow::new(60_000, 3);
        for i in 0..5 {
            w.insert(
                format!("id{i}"),
                Seen {
                    partition: 0,
                    offset: i,
                },
                0,
            );
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.get("id0", 0), None);
        assert!(w.get("id4", 0).is_some());
    }
}
