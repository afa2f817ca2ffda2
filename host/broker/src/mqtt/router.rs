//! The live side of MQTT: which client sessions exist, what they subscribe
//! to, which messages are retained, and handing each published message to
//! every matching subscriber. Streams (the durable side) are the node's; a
//! publish goes to both, whichever protocol it came in by.
//!
//! One mutex guards the whole router. Its critical sections are short (a
//! trie walk and a few channel sends that never wait), and one lock keeps
//! session takeover, subscription changes and routing trivially consistent.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_core::{FilterTrie, Message, TopicFilter, TopicName};
use sluice_mqtt::{Delivery, PublishProperties, QoS, RetainHandling, SessionState, Subscription};
use tokio::sync::{mpsc, oneshot};

use crate::drain::Drain;

/// Messages a session whose client is offline keeps in memory; a
/// persistent session's further messages wait on disk (see [`Spill`]).
pub const OFFLINE_QUEUE_MESSAGES_MAX: usize = 10_000;

/// A persistent session's QoS 1/2 messages that wait only on disk, because
/// its queue in memory was full: store ids `from..=last` of that client.
/// While a session spills, every new stored message joins the spill, so
/// order is kept; its connection reads them back as its queue drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spill {
    pub from: u64,
    pub last: u64,
    /// Restored after a restart: they may have been sent before (DUP).
    pub maybe_sent: bool,
}

/// What a session shares with whichever connection has it, read and
/// updated without the router's lock.
#[derive(Debug, Default)]
pub struct SessionShared {
    /// Set while messages of the session wait on disk ([`Router::spill_window`]).
    pub spilling: AtomicBool,
    /// Stored copies held for the session and not yet acknowledged; the
    /// router checks it against `stored_messages_max`, the connection
    /// lowers it as copies are deleted.
    pub stored: AtomicUsize,
    /// Messages the connection has queued and not yet written to its
    /// socket, as it last reported (its mailbox is counted apart).
    pub queued: AtomicUsize,
    /// Publishers waiting for the backlog to drain ([`Congested::drained`]).
    drain: Drain,
    /// The backlog did not drain within a publisher's wait: publishers
    /// stop waiting for this session until it has drained.
    stalled: AtomicBool,
}

impl SessionShared {
    /// A stored copy was deleted (acknowledged, expired or refused).
    pub fn forgotten(&self) {
        let _ = self
            .stored
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    /// The connection reports what it holds unwritten (`queued`) and what
    /// waits in its mailbox; at or below `low`, publishers waiting for it
    /// go on, and a stalled session counts as draining again.
    pub fn report_backlog(&self, queued: usize, mailbox: usize, low: usize) {
        // SeqCst: see [`Drain`].
        self.queued.store(queued, SeqCst);
        if queued + mailbox <= low {
            if self.stalled.load(Relaxed) {
                self.stalled.store(false, Relaxed);
            }
            self.drain.wake();
        }
    }
}

/// A subscriber whose backlog passed the high-water mark when a message was
/// routed to it: the publisher stops reading until it drains to half, or
/// until `wait_max` has passed, and then the subscriber counts as stalled,
/// which no publisher waits for again until it has drained.
pub struct Congested {
    session: Arc<SessionShared>,
    mailbox: mpsc::Sender<ToConnection>,
    since: Instant,
    low: usize,
    wait_max: Duration,
}

/// Messages waiting for a connection: in its mailbox, and queued in it as
/// it last reported.
fn backlog(session: &SessionShared, mailbox: &mpsc::Sender<ToConnection>) -> usize {
    let in_mailbox = mailbox.max_capacity() - mailbox.capacity();
    in_mailbox + session.queued.load(SeqCst)
}

impl Congested {
    /// Returns when the subscriber has drained to the low-water mark, or
    /// when the wait has lasted `wait_max` (the subscriber is then stalled).
    pub async fn drained(&self) {
        let deadline = tokio::time::Instant::from_std(self.since + self.wait_max);
        let caught_up = || {
            self.session.stalled.load(Relaxed) || backlog(&self.session, &self.mailbox) <= self.low
        };
        let waited = tokio::time::timeout_at(deadline, self.session.drain.wait(caught_up)).await;
        if waited.is_err() {
            self.session.stalled.store(true, Relaxed);
            // Other publishers waiting for it go on too.
            self.session.drain.wake_all();
        }
    }
}

impl std::fmt::Debug for Congested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Congested")
            .field("backlog", &backlog(&self.session, &self.mailbox))
            .field("low", &self.low)
            .finish_non_exhaustive()
    }
}

/// How far a subscriber may fall behind before its publishers wait.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pacing {
    /// Backlog in messages (mailbox and queue) at which publishers wait;
    /// 0 turns pacing off.
    pub backlog_messages_high: usize,
    /// The longest a publisher waits for one subscriber.
    pub wait_max: Duration,
}

/// Commands a connection task receives from the rest of the broker.
#[derive(Debug)]
pub enum ToConnection {
    /// Boxed: a channel's blocks are sized by its largest variant, and every
    /// idle connection holds one block (measured: 18.8 KiB per idle
    /// connection with the delivery inline and a 16 KiB read buffer).
    Deliver(Box<Delivery>),
    /// Another connection took this client id: send DISCONNECT 0x8E, hand the
    /// session state over, stop.
    TakeOver(oneshot::Sender<SessionState>),
    /// The node is stopping.
    Shutdown,
}

/// A subscription as the router keeps it.
#[derive(Debug, Clone)]
pub struct SubOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub subscription_id: Option<u32>,
    /// `Some(group)` for `$share/{group}/{filter}`.
    pub share_group: Option<String>,
}

/// Identifies one client's entry for one filter in the trie, so a client can
/// hold the same filter both shared and unshared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SubKey {
    client: String,
    share_group: Option<String>,
}

struct Session {
    /// The connected client's mailbox; `None` while offline.
    mailbox: Option<mpsc::Sender<ToConnection>>,
    /// A number per connection, so a late "closed" from a replaced connection is ignored.
    connection: u64,
    subscriptions: BTreeMap<String, (TopicFilter, SubOptions)>,
    /// 0 = the session ends with its connection.
    expiry_s: u32,
    /// While offline: the state the last connection left and what arrived since.
    offline: Option<SessionState>,
    offline_since: Option<Instant>,
    /// Messages held only on disk, if any (`shared.spilling` mirrors it).
    spill: Option<Spill>,
    shared: Arc<SessionShared>,
    /// Which incarnation of the client id's session this is: kept across
    /// resumption and takeover, new after a clean start.
    generation: u64,
}

impl Session {
    fn new(connection: u64, expiry_s: u32) -> Self {
        Session {
            mailbox: None,
            connection,
            subscriptions: BTreeMap::new(),
            expiry_s,
            offline: None,
            offline_since: None,
            spill: None,
            shared: Arc::default(),
            generation: connection,
        }
    }

    /// Adds store id `id` to the spill (starting one if none runs).
    fn spill(&mut self, id: u64, maybe_sent: bool) {
        let s = self.spill.get_or_insert(Spill {
            from: id,
            last: id,
            maybe_sent,
        });
        s.from = s.from.min(id);
        s.last = s.last.max(id);
        self.shared.spilling.store(true, Relaxed);
    }
}

/// A retained message: the last one published with RETAIN on its topic.
#[derive(Debug, Clone)]
pub struct Retained {
    pub message: Message,
    pub qos: QoS,
}

/// Router-wide counters for `$SYS` and `/metrics`.
#[derive(Debug, Default)]
pub struct RouterStats {
    pub messages_routed: AtomicU64,
    pub deliveries: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    /// QoS 1/2 messages that waited on disk because a session's queue was full.
    pub spilled: AtomicU64,
    /// Publishes routed to a subscriber that had fallen behind, or made
    /// while the metadata writer had: each holds its publisher back, unless
    /// it is waiting already.
    pub publisher_waits: AtomicU64,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Session>,
    trie: FilterTrie<SubKey, SubOptions>,
    retained: BTreeMap<String, Retained>,
    /// Retained messages per tenant, by the tenant's topic prefix ("" for
    /// the default tenant); the broker's own `$SYS/` ones are not counted.
    retained_per_tenant: HashMap<String, usize>,
    /// When expired retained messages were last swept out.
    retained_swept: Option<Instant>,
    /// Round-robin position per shared group.
    share_cursor: HashMap<String, usize>,
    next_connection: u64,
}

/// Whether a retained publish fits, or which limit it meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetainRoom {
    Yes,
    TenantFull,
    NodeFull,
}

/// How often, at most, a retained publish at a limit sweeps out the
/// expired retained messages.
const RETAINED_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Whose a retained topic is, for its limits: its tenant's prefix, "" for
/// the default tenant, `None` for the broker's own `$SYS/` statistics.
fn retained_owner(topic: &str) -> Option<&str> {
    if topic.starts_with("$SYS/") {
        return None;
    }
    Some(super::namespace::tenant_prefix(topic).unwrap_or(""))
}

impl State {
    fn put_retained(&mut self, r: Retained) {
        let topic = r.message.topic.as_str().to_owned();
        let owner = retained_owner(&topic).map(str::to_owned);
        if self.retained.insert(topic, r).is_none()
            && let Some(owner) = owner
        {
            *self.retained_per_tenant.entry(owner).or_default() += 1;
        }
    }

    fn unretain(&mut self, topic: &str) {
        if self.retained.remove(topic).is_some()
            && let Some(n) = retained_owner(topic).and_then(|o| self.retained_per_tenant.get_mut(o))
        {
            *n -= 1;
        }
    }
}

pub struct Router {
    state: Mutex<State>,
    pub stats: RouterStats,
    /// The next id for a message held by a persistent session.
    next_store_id: AtomicU64,
    /// Stored copies a persistent session may hold; newer ones are dropped.
    stored_messages_max: usize,
    pacing: Pacing,
}

/// What `connect` found for a client id.
pub struct Attached {
    pub connection: u64,
    pub session_present: bool,
    pub session: SessionState,
    /// A connection that held the id before and must hand its state over.
    pub previous: Option<mpsc::Sender<ToConnection>>,
    /// A persistent session existed for this id (so the store may hold it).
    pub had_persistent: bool,
    /// The session's spill flag and stored-copy count.
    pub shared: Arc<SessionShared>,
    /// The session's incarnation, for [`Router::spill_from`].
    pub generation: u64,
}

/// The outcome of routing one message.
#[derive(Debug)]
pub struct Routed<F> {
    pub subscribers: usize,
    /// What `before_send` returned for the copies held for persistent
    /// sessions (client id, store id, encoded message) and the stored copies
    /// an offline queue dropped (client id, store id).
    pub stored: F,
    /// A subscriber that has fallen behind, for the publisher to wait on.
    pub congested: Option<Congested>,
}

impl Default for Router {
    fn default() -> Self {
        Self::new(usize::MAX, Pacing::default())
    }
}

impl Router {
    /// A router whose persistent sessions hold at most `stored_messages_max`
    /// unacknowledged QoS 1/2 messages each, and whose publishers wait for
    /// subscribers as `pacing` says.
    pub fn new(stored_messages_max: usize, pacing: Pacing) -> Self {
        Self {
            state: Mutex::new(State::default()),
            stats: RouterStats::default(),
            next_store_id: AtomicU64::new(1),
            stored_messages_max,
            pacing,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("router lock")
    }

    /// Registers a connection for `client_id`. With `clean_start`, any
    /// previous session is discarded; otherwise its state is resumed.
    pub fn connect(
        &self,
        client_id: &str,
        clean_start: bool,
        expiry_s: u32,
        mailbox: mpsc::Sender<ToConnection>,
    ) -> Attached {
        let mut st = self.lock();
        st.next_connection += 1;
        let connection = st.next_connection;
        let previous = st
            .sessions
            .get_mut(client_id)
            .and_then(|s| s.mailbox.take());
        let had_persistent = st.sessions.get(client_id).is_some_and(|s| s.expiry_s > 0);
        if clean_start {
            remove_session(&mut st, client_id);
        }
        let present = st.sessions.contains_key(client_id);
        let session = st
            .sessions
            .entry(client_id.to_owned())
            .or_insert_with(|| Session::new(connection, expiry_s));
        session.mailbox = Some(mailbox);
        session.connection = connection;
        session.expiry_s = expiry_s;
        session.offline_since = None;
        let state = session.offline.take().unwrap_or_default();
        Attached {
            connection,
            session_present: present && !clean_start,
            session: state,
            previous,
            had_persistent,
            shared: session.shared.clone(),
            generation: session.generation,
        }
    }

    /// Merges the state a replaced connection handed over into the resumed
    /// session: its in-flight and queued messages come first, in order.
    pub fn merge_handed_over(handed: SessionState, into: &mut SessionState) {
        let mut merged = handed;
        merged.pending.extend(into.pending.drain(..));
        for (k, v) in std::mem::take(&mut into.inflight) {
            merged.inflight.entry(k).or_insert(v);
        }
        merged
            .incoming_qos2
            .extend(into.incoming_qos2.iter().copied());
        *into = merged;
    }

    /// The connection ended. A persistent session stays with its state and
    /// subscriptions and keeps receiving (QoS 1/2) while offline.
    pub fn disconnected(
        &self,
        client_id: &str,
        connection: u64,
        state: SessionState,
        expiry_s: u32,
    ) -> bool {
        let mut st = self.lock();
        let Some(s) = st.sessions.get_mut(client_id) else {
            return false;
        };
        if s.connection != connection {
            return false; // replaced by a newer connection, which owns the session now
        }
        if expiry_s == 0 {
            remove_session(&mut st, client_id);
            return true;
        }
        s.mailbox = None;
        s.expiry_s = expiry_s;
        s.offline = Some(state);
        s.offline_since = Some(Instant::now());
        true
    }

    /// Drops persistent sessions whose expiry passed while offline.
    pub fn expire_sessions(&self, now: Instant) -> Vec<String> {
        let mut st = self.lock();
        let expired: Vec<String> = st
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.offline_since.is_some_and(|t| {
                    now.duration_since(t) >= Duration::from_secs(u64::from(s.expiry_s))
                })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for c in &expired {
            remove_session(&mut st, c);
        }
        expired
    }

    /// Whether a client with this id is connected right now.
    pub fn is_connected(&self, client_id: &str) -> bool {
        self.lock()
            .sessions
            .get(client_id)
            .is_some_and(|s| s.mailbox.is_some())
    }

    pub fn connected_clients(&self) -> usize {
        self.lock()
            .sessions
            .values()
            .filter(|s| s.mailbox.is_some())
            .count()
    }

    pub fn sessions(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Adds or replaces a subscription unless it is new and the client's
    /// session already holds `max`: `Some(whether it is new)`, or `None`
    /// when refused.
    pub fn subscribe(
        &self,
        client_id: &str,
        filter: TopicFilter,
        options: SubOptions,
        max: usize,
    ) -> Option<bool> {
        let mut st = self.lock();
        let sub_name = subscription_name(&filter, options.share_group.as_deref());
        if let Some(s) = st.sessions.get(client_id)
            && s.subscriptions.len() >= max
            && !s.subscriptions.contains_key(&sub_name)
        {
            return None;
        }
        let key = SubKey {
            client: client_id.to_owned(),
            share_group: options.share_group.clone(),
        };
        let new = st.trie.insert(&filter, key, options.clone()).is_none();
        if let Some(s) = st.sessions.get_mut(client_id) {
            s.subscriptions.insert(sub_name, (filter, options));
        }
        Some(new)
    }

    /// Removes a subscription; returns whether it existed.
    pub fn unsubscribe(
        &self,
        client_id: &str,
        filter: &TopicFilter,
        share_group: Option<&str>,
    ) -> bool {
        let mut st = self.lock();
        let key = SubKey {
            client: client_id.to_owned(),
            share_group: share_group.map(str::to_owned),
        };
        let existed = st.trie.remove(filter, &key).is_some();
        if let Some(s) = st.sessions.get_mut(client_id) {
            s.subscriptions
                .remove(&subscription_name(filter, share_group));
        }
        existed
    }

    /// Stores or clears (empty payload) the retained message of its topic.
    pub fn retain(&self, message: &Message, qos: QoS) {
        let mut st = self.lock();
        if message.payload.is_empty() {
            st.unretain(message.topic.as_str());
        } else {
            st.put_retained(Retained {
                message: message.clone(),
                qos,
            });
        }
    }

    pub fn load_retained(&self, retained: Vec<Retained>) {
        let mut st = self.lock();
        for r in retained {
            st.put_retained(r);
        }
    }

    /// Whether a retained message may be stored on `topic` (the router's
    /// name for it): always when it replaces one, else when the node holds
    /// fewer than `node_max` and the topic's tenant fewer than
    /// `tenant_max`. At a limit, retained messages past their expiry are
    /// removed first (a sweep at most once a second); their topics come
    /// back so the caller deletes them from the store too.
    pub fn may_retain(
        &self,
        topic: &str,
        tenant_max: Option<usize>,
        node_max: usize,
    ) -> (RetainRoom, Vec<String>) {
        let mut st = self.lock();
        let room = |st: &State| {
            if st.retained.contains_key(topic) {
                return RetainRoom::Yes;
            }
            let Some(owner) = retained_owner(topic) else {
                return RetainRoom::Yes;
            };
            let held = st.retained_per_tenant.get(owner).copied().unwrap_or(0);
            if tenant_max.is_some_and(|max| held >= max) {
                RetainRoom::TenantFull
            } else if st.retained_per_tenant.values().sum::<usize>() >= node_max {
                RetainRoom::NodeFull
            } else {
                RetainRoom::Yes
            }
        };
        let first = room(&st);
        let now = Instant::now();
        if first == RetainRoom::Yes
            || st
                .retained_swept
                .is_some_and(|at| now.duration_since(at) < RETAINED_SWEEP_INTERVAL)
        {
            return (first, Vec::new());
        }
        st.retained_swept = Some(now);
        let now_ms = crate::stream::now_ms();
        let expired: Vec<String> = st
            .retained
            .iter()
            .filter(|(_, r)| {
                r.message
                    .mqtt
                    .expiry_s
                    .is_some_and(|e| r.message.timestamp_ms + i64::from(e) * 1000 <= now_ms)
            })
            .map(|(t, _)| t.clone())
            .collect();
        for t in &expired {
            st.unretain(t);
        }
        (room(&st), expired)
    }

    pub fn retained_count(&self) -> usize {
        self.lock().retained.len()
    }

    /// Retained messages for a new subscription, shaped for the subscriber.
    pub fn retained_for(
        &self,
        filter: &TopicFilter,
        sub: &Subscription,
        is_new: bool,
        sub_id: Option<u32>,
        now: Instant,
    ) -> Vec<Delivery> {
        let send = match sub.retain_handling {
            RetainHandling::SendAtSubscribe => true,
            RetainHandling::SendAtSubscribeIfNew => is_new,
            RetainHandling::DoNotSend => false,
        };
        if !send {
            return Vec::new();
        }
        let st = self.lock();
        // Only topics that start with the filter's literal levels can match:
        // walk that range of the map, not every tenant's retained messages.
        let literal = filter.as_str();
        let literal =
            literal[..literal.find(['+', '#']).unwrap_or(literal.len())].trim_end_matches('/');
        st.retained
            .range::<str, _>((
                std::ops::Bound::Included(literal),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(topic, _)| topic.starts_with(literal))
            .map(|(_, r)| r)
            .filter(|r| filter.matches(&r.message.topic))
            .filter_map(|r| {
                let options = SubOptions {
                    qos: sub.qos,
                    no_local: false,
                    retain_as_published: true,
                    subscription_id: sub_id,
                    share_group: None,
                };
                // Retained messages keep RETAIN set when sent for a new subscription (MQTT-3.3.1-8).
                shape(
                    &r.message,
                    r.qos,
                    true,
                    &options,
                    sub_id.into_iter().collect(),
                    now,
                )
            })
            .collect()
    }

    /// Hands `message` to every matching subscription: one copy per client at
    /// the highest matching QoS with all matching subscription ids (v5
    /// §3.3.4), and to one member per shared group.
    pub fn route<F>(
        &self,
        message: &Message,
        qos: QoS,
        retain: bool,
        publisher: Option<&str>,
        before_send: impl FnOnce(&[(String, u64, Vec<u8>)]) -> F,
    ) -> Routed<F> {
        let now = Instant::now();
        self.stats.messages_routed.fetch_add(1, Relaxed);
        let mut st = self.lock();
        // client → (max qos, retain_as_published, subscription ids)
        let mut direct: HashMap<String, SubOptions> = HashMap::new();
        let mut ids: HashMap<String, Vec<u32>> = HashMap::new();
        let mut shared: BTreeMap<String, Vec<(String, SubOptions)>> = BTreeMap::new();
        st.trie
            .for_each_match(&message.topic, |key, opts| match &opts.share_group {
                Some(g) => shared
                    .entry(g.clone())
                    .or_default()
                    .push((key.client.clone(), opts.clone())),
                None => {
                    if opts.no_local && publisher == Some(key.client.as_str()) {
                        return;
                    }
                    if let Some(id) = opts.subscription_id {
                        ids.entry(key.client.clone()).or_default().push(id);
                    }
                    direct
                        .entry(key.client.clone())
                        .and_modify(|o| {
                            o.qos = o.qos.max(opts.qos);
                            o.retain_as_published |= opts.retain_as_published;
                        })
                        .or_insert_with(|| opts.clone());
                }
            });
        let mut targets: Vec<(String, SubOptions, Vec<u32>)> = direct
            .into_iter()
            .map(|(c, o)| {
                let i = ids.remove(&c).unwrap_or_default();
                (c, o, i)
            })
            .collect();
        for (group, mut members) in shared {
            members.sort_by(|a, b| a.0.cmp(&b.0));
            // Prefer connected members, so a shared message does not wait for an offline one.
            let online: Vec<usize> = (0..members.len())
                .filter(|i| {
                    st.sessions
                        .get(&members[*i].0)
                        .is_some_and(|s| s.mailbox.is_some())
                })
                .collect();
            let pool: Vec<usize> = if online.is_empty() {
                (0..members.len()).collect()
            } else {
                online
            };
            // One cursor per group: keyed by topic it would grow with every
            // topic ever published under a shared filter. Per tenant, so
            // one tenant's traffic does not move another's choice.
            let group = match super::namespace::tenant_prefix(message.topic.as_str()) {
                Some(tenant) => format!("{tenant}{group}"),
                None => group,
            };
            let cursor = st.share_cursor.entry(group).or_insert(0);
            let pick = pool[*cursor % pool.len()];
            *cursor = cursor.wrapping_add(1);
            let (client, opts) = members.swap_remove(pick);
            let ids = opts.subscription_id.into_iter().collect();
            targets.push((client, opts, ids));
        }
        let subscribers = targets.len();
        let now_ms = crate::stream::now_ms();
        let mut held = Vec::new();
        let mut sends = Vec::with_capacity(targets.len());
        let mut congested = None;
        for (client, opts, ids) in targets {
            let Some(mut delivery) = shape(message, qos, retain, &opts, ids, now) else {
                continue;
            };
            let Some(session) = st.sessions.get_mut(&client) else {
                continue;
            };
            if session.expiry_s > 0 && delivery.qos != QoS::AtMostOnce {
                if session.shared.stored.load(Relaxed) >= self.stored_messages_max {
                    // A full session drops the newest: what it holds keeps its order.
                    self.stats.dropped_queue_full.fetch_add(1, Relaxed);
                    continue;
                }
                let id = self.next_store_id.fetch_add(1, Relaxed);
                delivery.store_id = Some(id);
                held.push((
                    client.clone(),
                    id,
                    super::store::encode_delivery(&delivery, now, now_ms),
                ));
                session.shared.stored.fetch_add(1, Relaxed);
            }
            self.stats.deliveries.fetch_add(1, Relaxed);
            if let Some(id) = delivery.store_id
                && session.spill.is_some()
            {
                // Behind messages on disk, this one waits there too.
                self.spill(session, id);
                continue;
            }
            if let Some(tx) = &session.mailbox {
                if congested.is_none() {
                    congested = self.congestion(&session.shared, tx, now);
                }
                sends.push((client, tx.clone(), delivery));
                continue;
            }
            if delivery.qos == QoS::AtMostOnce {
                continue; // QoS 0 is not kept for an offline session
            }
            match (&mut session.offline, delivery.store_id) {
                (Some(state), _) if state.pending.len() < OFFLINE_QUEUE_MESSAGES_MAX => {
                    state.pending.push_back(delivery);
                }
                (Some(_), Some(id)) => self.spill(session, id),
                _ => {}
            }
        }
        // Stored copies are queued for the store before any subscriber can
        // see (and acknowledge, and so delete) them.
        let stored = before_send(&held);
        for (client, tx, delivery) in sends {
            let store_id = delivery.store_id;
            if tx
                .try_send(ToConnection::Deliver(Box::new(delivery)))
                .is_err()
            {
                // A stored copy waits on disk for room; anything else is lost.
                match (store_id, st.sessions.get_mut(&client)) {
                    (Some(id), Some(session)) => self.spill(session, id),
                    _ => {
                        self.stats.dropped_queue_full.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        if congested.is_some() {
            self.stats.publisher_waits.fetch_add(1, Relaxed);
        }
        Routed {
            subscribers,
            stored,
            congested,
        }
    }

    /// Whether the connection behind `mailbox` is so far behind that its
    /// publishers should wait; a stalled one is not waited for.
    fn congestion(
        &self,
        session: &Arc<SessionShared>,
        mailbox: &mpsc::Sender<ToConnection>,
        now: Instant,
    ) -> Option<Congested> {
        let high = self.pacing.backlog_messages_high;
        if high == 0 || session.stalled.load(Relaxed) {
            return None;
        }
        if backlog(session, mailbox) < high {
            return None;
        }
        Some(Congested {
            session: session.clone(),
            mailbox: mailbox.clone(),
            since: now,
            low: high / 2,
            wait_max: self.pacing.wait_max,
        })
    }

    /// The stored form of a persistent session, or `None` if it is not one.
    pub fn session_record(
        &self,
        client_id: &str,
        disconnected_ms: Option<i64>,
    ) -> Option<super::store::StoredSession> {
        let st = self.lock();
        let s = st.sessions.get(client_id).filter(|s| s.expiry_s > 0)?;
        Some(super::store::StoredSession {
            expiry_s: s.expiry_s,
            disconnected_ms,
            subscriptions: s
                .subscriptions
                .values()
                .map(|(f, o)| super::store::StoredSub::from_options(f.as_str(), o))
                .collect(),
        })
    }

    /// Brings back a persistent session from the store after a restart,
    /// offline, with the messages it held (they may have been sent before,
    /// so they go out with DUP).
    pub fn restore(
        &self,
        client_id: &str,
        record: &super::store::StoredSession,
        held: Vec<Delivery>,
        qos2_received: Vec<u16>,
        offline_for: Duration,
    ) {
        let mut st = self.lock();
        let mut subscriptions = BTreeMap::new();
        for sub in &record.subscriptions {
            let Ok(filter) = TopicFilter::new(&sub.filter) else {
                continue;
            };
            let options = sub.options();
            let key = SubKey {
                client: client_id.to_owned(),
                share_group: options.share_group.clone(),
            };
            st.trie.insert(&filter, key, options.clone());
            subscriptions.insert(
                subscription_name(&filter, options.share_group.as_deref()),
                (filter, options),
            );
        }
        if let Some(max) = held.iter().filter_map(|d| d.store_id).max() {
            self.next_store_id.fetch_max(max + 1, Relaxed);
        }
        let mut session = Session::new(0, record.expiry_s);
        session.subscriptions = subscriptions;
        session.offline_since = Instant::now()
            .checked_sub(offline_for)
            .or_else(|| Some(Instant::now()));
        session.shared.stored.store(held.len(), Relaxed);
        let mut state = SessionState::default();
        let mut held = held.into_iter();
        state
            .pending
            .extend(held.by_ref().take(OFFLINE_QUEUE_MESSAGES_MAX));
        // The rest stay on disk until the client makes room.
        for id in held.filter_map(|d| d.store_id) {
            session.spill(id, true);
        }
        state.incoming_qos2.extend(qos2_received);
        session.offline = Some(state);
        st.sessions.insert(client_id.to_owned(), session);
    }

    /// Adds stored message `id` to `session`'s spill, and counts it.
    fn spill(&self, session: &mut Session, id: u64) {
        session.spill(id, false);
        self.stats.spilled.fetch_add(1, Relaxed);
    }

    /// A connection of session `generation` of `client_id` could not
    /// queue stored message `id` (its queue was full, or it was being taken
    /// over): it and every later one wait on disk, for whichever connection
    /// has the session now. After a clean start the old session is gone,
    /// and so is its stored copy: its word is ignored.
    pub fn spill_from(&self, client_id: &str, generation: u64, id: u64) {
        if let Some(s) = self.lock().sessions.get_mut(client_id)
            && s.generation == generation
        {
            self.spill(s, id);
        }
    }

    /// The messages of `client_id` waiting on disk, if any.
    pub fn spill_window(&self, client_id: &str) -> Option<Spill> {
        self.lock().sessions.get(client_id).and_then(|s| s.spill)
    }

    /// The connection has read back the spilled messages before store id
    /// `next`; returns `true` when none is left on disk, so new messages go
    /// to the connection again (decided under the lock routing takes, so
    /// none falls between).
    pub fn unspill(&self, client_id: &str, next: u64) -> bool {
        let mut st = self.lock();
        let Some(s) = st.sessions.get_mut(client_id) else {
            return true;
        };
        match &mut s.spill {
            Some(sp) if next <= sp.last => {
                sp.from = sp.from.max(next);
                false
            }
            _ => {
                s.spill = None;
                s.shared.spilling.store(false, Relaxed);
                true
            }
        }
    }

    /// Asks every connected client to stop (node shutdown).
    pub fn shutdown_all(&self) {
        let st = self.lock();
        for s in st.sessions.values() {
            if let Some(tx) = &s.mailbox {
                let _ = tx.try_send(ToConnection::Shutdown);
            }
        }
    }
}

fn subscription_name(filter: &TopicFilter, share: Option<&str>) -> String {
    match share {
        Some(g) => format!("$share/{g}/{filter}"),
        None => filter.to_string(),
    }
}

fn remove_session(st: &mut State, client_id: &str) {
    if let Some(s) = st.sessions.remove(client_id) {
        for (filter, opts) in s.subscriptions.values() {
            let key = SubKey {
                client: client_id.to_owned(),
                share_group: opts.share_group.clone(),
            };
            st.trie.remove(filter, &key);
        }
    }
}

/// A message as one subscriber receives it, or `None` if it already expired.
pub fn shape(
    message: &Message,
    qos: QoS,
    retain: bool,
    opts: &SubOptions,
    subscription_ids: Vec<u32>,
    now: Instant,
) -> Option<Delivery> {
    let age = (crate::stream::now_ms() - message.timestamp_ms).max(0) as u64;
    let expires_at = match message.mqtt.expiry_s {
        Some(e) => {
            let left = (u64::from(e) * 1000).checked_sub(age)?;
            Some(now + Duration::from_millis(left))
        }
        None => None,
    };
    Some(Delivery {
        // The subscriber's tenant's own name for it (see `namespace`).
        topic: super::namespace::external_topic(message.topic.as_str()).to_owned(),
        payload: message.payload.clone(),
        qos: qos.min(opts.qos),
        retain: retain && opts.retain_as_published,
        properties: PublishProperties {
            payload_format_indicator: message.mqtt.payload_utf8.then_some(true),
            message_expiry_interval_s: None,
            topic_alias: None,
            response_topic: message.mqtt.response_topic.clone(),
            correlation_data: message.mqtt.correlation_data.clone(),
            user_properties: message.headers.clone(),
            subscription_identifiers: subscription_ids,
            content_type: message.content_type.clone(),
        },
        expires_at,
        store_id: None,
        maybe_sent: false,
    })
}

/// Builds the broker's message from an MQTT publish.
pub fn message_from_publish(
    topic: TopicName,
    payload: Bytes,
    properties: PublishProperties,
    timestamp_ms: i64,
) -> Message {
    let key = properties
        .user_properties
        .iter()
        .find(|(k, _)| k == "sluice-key")
        .map(|(_, v)| Bytes::from(v.clone().into_bytes()));
    let msg_id = properties
        .user_properties
        .iter()
        .find(|(k, _)| k == "sluice-msg-id")
        .map(|(_, v)| v.clone());
    Message {
        topic,
        key,
        headers: properties.user_properties,
        content_type: properties.content_type,
        msg_id,
        payload,
        timestamp_ms,
        mqtt: sluice_core::MqttProperties {
            payload_utf8: properties.payload_format_indicator.unwrap_or(false),
            expiry_s: properties.message_expiry_interval_s,
            response_topic: properties.response_topic,
            correlation_data: properties.correlation_data,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(high: usize, wait_ms: u64) -> Router {
        Router::new(
            usize::MAX,
            Pacing {
                backlog_messages_high: high,
                wait_max: Duration::from_millis(wait_ms),
            },
        )
    }

    fn message() -> Message {
        message_on("t/x")
    }

    fn message_on(topic: &str) -> Message {
        Message {
            topic: TopicName::new(topic).unwrap(),
            key: None,
            headers: Vec::new(),
            content_type: None,
            msg_id: None,
            payload: Bytes::from_static(b"m"),
            timestamp_ms: crate::stream::now_ms(),
            mqtt: Default::default(),
        }
    }

    #[test]
    fn retained_for_a_filter_is_every_match_and_nothing_else() {
        let r = router(usize::MAX, 0);
        let topics = ["a", "a/b", "a/b/c", "ab", "b/c", "$SYS/x", "$tenant/acme/a"];
        for t in topics {
            r.retain(
                &Message {
                    topic: TopicName::new(t).unwrap(),
                    ..message()
                },
                QoS::AtMostOnce,
            );
        }
        for filter in [
            "a/#",
            "a",
            "a/+",
            "+/c",
            "#",
            "+",
            "a/b/#",
            "$tenant/acme/#",
            "$SYS/+",
            "ab/#",
            "zz/#",
        ] {
            let f = TopicFilter::new(filter).unwrap();
            let sub = sluice_mqtt::Subscription::new(filter, QoS::AtMostOnce);
            let mut got: Vec<String> = r
                .retained_for(&f, &sub, true, None, Instant::now())
                .into_iter()
                .map(|d| d.topic)
                .collect();
            got.sort();
            let mut want: Vec<String> = topics
                .iter()
                .filter(|t| f.matches(&TopicName::new(t).unwrap()))
                .map(|t| super::super::namespace::external_topic(t).to_owned())
                .collect();
            want.sort();
            assert_eq!(got, want, "{filter}");
        }
    }

    /// A connected QoS 0 subscriber to `t/#` with a mailbox of 64.
    fn subscriber(r: &Router) -> (Arc<SessionShared>, mpsc::Receiver<ToConnection>) {
        let (tx, rx) = mpsc::channel(64);
        let attached = r.connect("sub", true, 0, tx);
        let options = SubOptions {
            qos: QoS::AtMostOnce,
            no_local: false,
            retain_as_published: false,
            subscription_id: None,
            share_group: None,
        };
        r.subscribe("sub", TopicFilter::new("t/#").unwrap(), options, usize::MAX);
        (attached.shared, rx)
    }

    #[test]
    fn a_session_holds_at_most_max_subscriptions() {
        let r = router(4, 5_000);
        let (tx, _rx) = mpsc::channel(64);
        let _attached = r.connect("c", true, 0, tx);
        let options = |share_group: Option<&str>| SubOptions {
            qos: QoS::AtMostOnce,
            no_local: false,
            retain_as_published: false,
            subscription_id: None,
            share_group: share_group.map(str::to_owned),
        };
        let f = |t: &str| TopicFilter::new(t).unwrap();
        assert_eq!(r.subscribe("c", f("a/#"), options(None), 2), Some(true));
        assert_eq!(
            r.subscribe("c", f("a/#"), options(Some("g")), 2),
            Some(true)
        );
        assert_eq!(r.subscribe("c", f("b"), options(None), 2), None, "a third");
        let to_b = |r: &Router| {
            r.route(&message_on("b"), QoS::AtMostOnce, false, None, |_| ())
                .subscribers
        };
        assert_eq!(to_b(&r), 0, "the refused filter is not in the tree");
        assert_eq!(
            r.subscribe("c", f("a/#"), options(None), 2),
            Some(false),
            "replacing one is no new one"
        );
        assert!(r.unsubscribe("c", &f("a/#"), Some("g")));
        assert_eq!(r.subscribe("c", f("b"), options(None), 2), Some(true));
        assert_eq!(to_b(&r), 1);
    }

    fn route(r: &Router) -> Option<Congested> {
        r.route(&message(), QoS::AtMostOnce, false, None, |_| ())
            .congested
    }

    #[tokio::test]
    async fn a_publisher_waits_from_the_high_mark_until_the_subscriber_drains_to_half() {
        let r = router(4, 5_000);
        let (shared, mut rx) = subscriber(&r);
        for _ in 0..4 {
            assert!(route(&r).is_none(), "below the mark");
        }
        let c = route(&r).expect("4 waiting: the publisher waits");
        let waiter = tokio::spawn(async move { c.drained().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "nothing drained yet");
        // The connection takes its mailbox into its queue: still behind.
        while rx.try_recv().is_ok() {}
        shared.report_backlog(5, 0, 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "5 queued is above half");
        shared.report_backlog(2, 0, 2);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("drained to half: the publisher goes on")
            .unwrap();
        assert!(route(&r).is_none(), "and is not held while it stays low");
        assert_eq!(r.stats.publisher_waits.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn a_subscriber_that_does_not_drain_in_time_is_not_waited_for_until_it_does() {
        let r = router(4, 50);
        let (shared, mut rx) = subscriber(&r);
        for _ in 0..4 {
            route(&r);
        }
        let c = route(&r).expect("waits");
        let started = Instant::now();
        c.drained().await;
        assert!(started.elapsed() >= Duration::from_millis(50));
        for _ in 0..10 {
            assert!(route(&r).is_none(), "stalled: not waited for");
        }
        // It catches up, and later falls behind again: publishers wait again.
        while rx.try_recv().is_ok() {}
        shared.report_backlog(0, 0, 2);
        for _ in 0..4 {
            assert!(route(&r).is_none());
        }
        assert!(route(&r).is_some(), "behind again after having drained");
    }

    #[test]
    fn pacing_off_never_holds_a_publisher() {
        let r = router(0, 50);
        let (_shared, _rx) = subscriber(&r);
        for _ in 0..60 {
            assert!(route(&r).is_none());
        }
    }
}
