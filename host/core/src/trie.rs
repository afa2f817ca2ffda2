//! A topic-filter trie: many subscriptions (or stream subjects), one walk per
//! published topic. Matching cost grows with the topic's depth and the number
//! of matches, not with the number of filters, which is what lets one node
//! hold hundreds of thousands of MQTT subscriptions.

use std::collections::HashMap;
use std::hash::Hash;

use crate::topic::{TopicFilter, TopicName};

/// Filters mapped to values, keyed per filter by `K` (e.g. a session id), so
/// the same filter may be held by many subscribers and each can leave alone.
#[derive(Debug)]
pub struct FilterTrie<K, V> {
    root: Node<K, V>,
    len: usize,
}

#[derive(Debug)]
struct Node<K, V> {
    children: HashMap<Box<str>, Node<K, V>>,
    /// Values of filters that end exactly here.
    here: HashMap<K, V>,
    /// Values of filters that end here with `/#` (or are `#` at the root).
    multi: HashMap<K, V>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Self {
            children: HashMap::new(),
            here: HashMap::new(),
            multi: HashMap::new(),
        }
    }
}

impl<K, V> Node<K, V> {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.here.is_empty() && self.multi.is_empty()
    }
}

impl<K: Hash + Eq + Clone, V> Default for FilterTrie<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone, V> FilterTrie<K, V> {
    pub fn new() -> Self {
        Self {
            root: Node::default(),
            len: 0,
        }
    }

    /// Number of (filter, key) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds or replaces `key`'s entry for `filter`; returns the old value.
    pub fn insert(&mut self, filter: &TopicFilter, key: K, value: V) -> Option<V> {
        let mut node = &mut self.root;
        let mut levels = filter.as_str().split('/').peekable();
        while let Some(level) = levels.next() {
            if level == "#" && levels.peek().is_none() {
                let old = node.multi.insert(key, value);
                self.len += usize::from(old.is_none());
                return old;
            }
            node = node.children.entry(level.into()).or_default();
        }
        let old = node.here.insert(key, value);
        self.len += usize::from(old.is_none());
        old
    }

    /// Removes `key`'s entry for `filter`; prunes empty branches.
    pub fn remove(&mut self, filter: &TopicFilter, key: &K) -> Option<V> {
        let levels: Vec<&str> = filter.as_str().split('/').collect();
        let old = remove_at(&mut self.root, &levels, key);
        self.len -= usize::from(old.is_some());
        old
    }

    /// Calls `f` with every (key, value) whose filter matches `topic`. A key
    /// holding several matching filters is reported once per filter, so the
    /// caller can apply MQTT's overlapping-subscription rules.
    pub fn for_each_match(&self, topic: &TopicName, mut f: impl FnMut(&K, &V)) {
        let levels: Vec<&str> = topic.as_str().split('/').collect();
        walk(&self.root, &levels, 0, topic.is_system(), &mut f);
    }
}

fn remove_at<K: Hash + Eq, V>(node: &mut Node<K, V>, levels: &[&str], key: &K) -> Option<V> {
    match levels {
        [] => node.here.remove(key),
        ["#"] => node.multi.remove(key),
        [first, rest @ ..] => {
            let child = node.children.get_mut(*first)?;
            let old = remove_at(child, rest, key);
            if child.is_empty() {
                node.children.remove(*first);
            }
            old
        }
    }
}

fn walk<K, V>(
    node: &Node<K, V>,
    levels: &[&str],
    depth: usize,
    system: bool,
    f: &mut impl FnMut(&K, &V),
) {
    // MQTT 5.0 §4.7.2: wildcards at the first level never match `$` topics.
    let wildcards_ok = !(depth == 0 && system);
    if wildcards_ok {
        // `a/#` matches `a` itself as well as everything below it.
        node.multi.iter().for_each(|(k, v)| f(k, v));
    }
    let Some((level, rest)) = levels.split_first() else {
        node.here.iter().for_each(|(k, v)| f(k, v));
        return;
    };
    if let Some(child) = node.children.get(*level) {
        walk(child, rest, depth + 1, system, f);
    }
    if wildcards_ok && let Some(child) = node.children.get("+") {
        walk(child, rest, depth + 1, system, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn matches(trie: &FilterTrie<u32, ()>, topic: &str) -> Vec<u32> {
        let mut out = Vec::new();
        trie.for_each_match(&TopicName::new(topic).unwrap(), |k, _| out.push(*k));
        out.sort();
        out
    }

    #[test]
    fn walks_wildcards_like_the_spec() {
        let mut t = FilterTrie::new();
        for (i, f) in [
            "sensors/#",
            "sensors/+/temp",
            "#",
            "+/+",
            "a/b",
            "$SYS/#",
            "/+",
        ]
        .iter()
        .enumerate()
        {
            t.insert(&TopicFilter::new(f).unwrap(), i as u32, ());
        }
        assert_eq!(matches(&t, "sensors"), vec![0, 2]);
        assert_eq!(matches(&t, "sensors/x/temp"), vec![0, 1, 2]);
        assert_eq!(matches(&t, "a/b"), vec![2, 3, 4]);
        assert_eq!(matches(&t, "$SYS/uptime"), vec![5]);
        assert_eq!(matches(&t, "/x"), vec![2, 3, 6]);
        assert_eq!(t.len(), 7);
        t.remove(&TopicFilter::new("sensors/+/temp").unwrap(), &1);
        t.remove(&TopicFilter::new("#").unwrap(), &2);
        assert_eq!(matches(&t, "sensors/x/temp"), vec![0]);
        assert_eq!(t.len(), 5);
    }

    proptest! {
        /// The trie agrees with `TopicFilter::matches` on every pair.
        #[test]
        fn agrees_with_the_reference_matcher(
            filters in proptest::collection::vec("(\\$?[ab]|\\+)(/([ab]|\\+))*(/#)?|#", 1..12),
            topics in proptest::collection::vec("\\$?[ab]?(/[ab]?){0,3}", 1..12),
        ) {
            let filters: Vec<TopicFilter> = filters.iter().filter_map(|f| TopicFilter::new(f).ok()).collect();
            let mut t = FilterTrie::new();
            for (i, f) in filters.iter().enumerate() {
                t.insert(f, i as u32, ());
            }
            for topic in topics.iter().filter_map(|s| TopicName::new(s).ok()) {
                let mut expected: Vec<u32> = filters.iter().enumerate().filter(|(_, f)| f.matches(&topic)).map(|(i, _)| i as u32).collect();
                expected.sort();
                prop_assert_eq!(matches(&t, topic.as_str()), expected, "topic {}", topic);
            }
        }
    }
}
