//! The tokio shell around one MQTT connection. It only moves bytes and
//! events: socket reads go into [`Connection::handle_input`], the router's
//! deliveries into [`Connection::deliver`], deadlines into
//! [`Connection::handle_timeout`]; what comes out of `poll_transmit` is
//! written to the socket and what comes out of `poll_event` is acted on here
//! (authenticate, route, subscribe). Partial reads stay in `rbuf`, owned by
//! the task, never in a local across an `.await`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sluice_core::{TenantId, TopicFilter};
use sluice_mqtt::{
    Accept, CloseReason, Connect, Connection, ConnectionConfig, Event, InboundPublish, PacketId,
    QoS, ReasonCode, Subscribe, Unsubscribe, Version, Will,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::listener::ListenerStats;
use super::router::{SubOptions, ToConnection, message_from_publish};
use crate::meta::MetaWrite;
use crate::node::{Node, NodeError};
use crate::options::MqttOptions;

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Read room of a connection whose last read was small.
const READ_IDLE_BYTES: usize = 128;
/// Mailbox commands handled per wake-up before the socket is written.
const MAILBOX_BATCH_MAX: usize = 256;
/// How long a takeover waits for the old connection to hand its session over.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);
/// Spilled messages read back from disk at a time, at most.
const REFILL_BATCH_MAX: usize = 1024;
/// How soon a refill that found its messages not yet durable tries again.
const REFILL_RETRY: Duration = Duration::from_millis(10);
/// How long spilled messages may stay missing from the store before they
/// are taken as never written (their publisher was refused): far longer
/// than a write takes, so only a failed write gets here.
const REFILL_GIVE_UP: Duration = Duration::from_secs(5);

type AckFuture = Pin<Box<dyn Future<Output = ReasonCode> + Send>>;

/// What an acknowledgement waiting for durability answers.
#[derive(Clone, Copy)]
enum Owed {
    /// PUBACK or PUBREC for a QoS 1/2 publish.
    Publish(QoS),
    /// PUBCOMP for a PUBREL, once the QoS 2 id is forgotten on disk.
    Release,
}

/// What woke the task (lives for one turn of the loop, so its size is moot).
#[allow(clippy::large_enum_variant)]
enum Wake {
    Read(std::io::Result<usize>),
    Ack(ReasonCode),
    Command(Option<ToConnection>),
    /// What this publisher waited for (a subscriber, the metadata writer) is done.
    Drained,
    Timeout,
}

/// Who the client is, once CONNECT is accepted.
struct Identity {
    principal: crate::auth::Principal,
    client_id: String,
    connection: u64,
    /// The session's incarnation (see `Router::spill_from`).
    generation: u64,
    will: Option<Will>,
}

pub struct Task<S> {
    node: Arc<Node>,
    tenant: TenantId,
    /// The metadata store within `tenant`'s share of its writer.
    meta: crate::meta::TenantMeta,
    stats: Arc<ListenerStats>,
    socket: S,
    conn: Connection,
    rbuf: BytesMut,
    wbuf: BytesMut,
    mailbox_tx: mpsc::Sender<ToConnection>,
    mailbox: mpsc::Receiver<ToConnection>,
    /// QoS 1/2 publishes and QoS 2 releases waiting for durability, in
    /// arrival order: their acknowledgements must leave in the same order
    /// (MQTT-4.6.0-2).
    acks: VecDeque<(PacketId, Owed, AckFuture)>,
    identity: Option<Identity>,
    /// Set when another connection took the session: it owns it now.
    taken_over: bool,
    /// Whether the last read filled its room (then the next gets more).
    busy_reads: bool,
    /// This turn was a small read and nothing else: if the connection has
    /// nothing queued after it, its buffers are released.
    quiet_turn: bool,
    /// What the session shares with the router: whether its messages wait
    /// on disk, and how many stored copies it holds.
    session: Arc<super::router::SessionShared>,
    /// The first store id this connection could not queue: it and every
    /// later stored message arriving by the mailbox are on disk already, and
    /// come back from there in order.
    spilled_from: Option<u64>,
    /// When to look for spilled messages again, if they were not durable yet.
    refill_at: Option<Instant>,
    /// Since when a refill has found nothing of a spill it knows of.
    refill_stalled_since: Option<Instant>,
    /// A subscriber this client published to has fallen behind, or the
    /// metadata writer has: the socket is not read until this is done
    /// (the subscriber drained, the wait timed out, the writer caught up).
    /// Boxed: an idle connection holds only the pointer.
    waiting: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// The connection's QoS 0 drops already added to the node's count.
    qos0_dropped_reported: u64,
    /// Its place in the tenant's `mqtt_connections_max`, given back when
    /// the task ends.
    connection_slot: Option<crate::quota::ConnectionSlot>,
}

pub fn connection_config(o: &MqttOptions) -> ConnectionConfig {
    ConnectionConfig {
        packet_bytes_max: o.packet_bytes_max,
        receive_maximum: o.receive_maximum,
        topic_alias_maximum: o.topic_alias_maximum,
        keep_alive_s_max: o.keep_alive_s_max,
        session_expiry_s_max: o.session_expiry_s_max,
        pending_messages_max: o.session_queue_messages_max,
        qos0_queue_messages_max: o.session_queue_messages_max,
        inflight_messages_max: o.inflight_messages_max,
        ..ConnectionConfig::default()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Task<S> {
    pub fn new(node: Arc<Node>, stats: Arc<ListenerStats>, socket: S) -> Self {
        let options = node.options.mqtt.clone();
        let (mailbox_tx, mailbox) = mpsc::channel(options.session_queue_messages_max.max(16));
        Task {
            conn: Connection::new(connection_config(&options), Instant::now()),
            meta: node.meta_for(&TenantId::default_tenant()),
            node,
            tenant: TenantId::default_tenant(),
            stats,
            socket,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            mailbox_tx,
            mailbox,
            acks: VecDeque::new(),
            connection_slot: None,
            identity: None,
            taken_over: false,
            busy_reads: false,
            quiet_turn: false,
            session: Arc::default(),
            spilled_from: None,
            refill_at: None,
            refill_stalled_since: None,
            waiting: None,
            qos0_dropped_reported: 0,
        }
    }

    pub async fn run(mut self) {
        loop {
            self.refill();
            self.handle_events().await;
            if self.flush().await.is_err() {
                self.conn.handle_transport_closed();
                self.handle_events().await;
            }
            self.report_backlog();
            if self.conn.is_closed() {
                break;
            }
            if std::mem::take(&mut self.quiet_turn)
                && self.acks.is_empty()
                && self.conn.release_idle_buffers()
            {
                self.wbuf = BytesMut::new();
            }
            let deadline = [self.conn.poll_timeout(), self.refill_at]
                .into_iter()
                .flatten()
                .min()
                .map(tokio::time::Instant::from_std);
            let wake = {
                // Read room adapts: a connection whose last read filled its
                // room gets a big one, a quiet one keeps a small one, so
                // 10,000 idle clients do not hold 16 KiB each.
                self.rbuf.reserve(if self.busy_reads {
                    READ_CHUNK_BYTES
                } else {
                    READ_IDLE_BYTES
                });
                let Task {
                    acks,
                    socket,
                    rbuf,
                    mailbox,
                    waiting,
                    ..
                } = &mut self;
                let ack_ready = async {
                    match acks.front_mut() {
                        Some((_, _, f)) => f.await,
                        None => std::future::pending().await,
                    }
                };
                let reading = waiting.is_none();
                let drained = async {
                    match waiting {
                        Some(w) => w.await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    r = socket.read_buf(rbuf), if reading => Wake::Read(r),
                    () = drained => Wake::Drained,
                    reason = ack_ready => Wake::Ack(reason),
                    cmd = mailbox.recv() => Wake::Command(cmd),
                    _ = sleep_until(deadline) => Wake::Timeout,
                }
            };
            match wake {
                Wake::Read(Ok(0) | Err(_)) => self.conn.handle_transport_closed(),
                Wake::Read(Ok(n)) => {
                    self.busy_reads = n >= READ_IDLE_BYTES;
                    self.quiet_turn = !self.busy_reads;
                    self.stats.bytes_in.fetch_add(n as u64, Relaxed);
                    self.conn.handle_input(Instant::now(), &mut self.rbuf);
                    if self.rbuf.is_empty() {
                        self.rbuf = BytesMut::new();
                    }
                }
                Wake::Ack(reason) => match self.acks.pop_front().expect("an ack was ready") {
                    (id, Owed::Publish(qos), _) => self.conn.publish_done(id, qos, reason),
                    (id, Owed::Release, _) => self.conn.release_done(id),
                },
                // The task holds a sender itself, so the mailbox never closes.
                Wake::Command(cmd) => {
                    self.command(cmd.expect("mailbox open"));
                    // Take what else is waiting before writing, so a burst of
                    // deliveries costs one write, not one per message.
                    for _ in 0..MAILBOX_BATCH_MAX {
                        match self.mailbox.try_recv() {
                            Ok(cmd) => self.command(cmd),
                            Err(_) => break,
                        }
                    }
                }
                Wake::Drained => self.waiting = None,
                Wake::Timeout => self.conn.handle_timeout(Instant::now()),
            }
        }
        // Whoever waits for this connection to drain need not any more.
        self.session.report_backlog(0, 0, usize::MAX);
        self.report_drops();
        // Publishes not yet acknowledged still owe their side effects
        // (durable appends, stored copies, retained writes): let them finish.
        for (_, _, ack) in self.acks.drain(..) {
            tokio::spawn(ack);
        }
        let _ = self.flush().await;
        let _ = self.socket.shutdown().await;
    }

    fn command(&mut self, cmd: ToConnection) {
        match cmd {
            ToConnection::Deliver(d) => {
                let store_id = d.store_id;
                // Behind messages on disk, a stored copy comes back from
                // there; routed before the spill began, it may not be in
                // it yet, so it joins it.
                let behind_spill = matches!(
                    (store_id, self.spilled_from),
                    (Some(id), Some(from)) if id >= from
                );
                if !behind_spill && self.conn.deliver(*d).is_ok() {
                    return;
                }
                match (store_id, &self.identity) {
                    // A stored copy waits on disk for room.
                    (Some(id), Some(identity)) => {
                        self.node
                            .router
                            .spill_from(&identity.client_id, identity.generation, id);
                        self.spilled_from = Some(self.spilled_from.map_or(id, |f| f.min(id)));
                    }
                    _ => {
                        self.node
                            .router
                            .stats
                            .dropped_queue_full
                            .fetch_add(1, Relaxed);
                    }
                }
            }
            ToConnection::TakeOver(reply) => {
                self.conn.disconnect(ReasonCode::SESSION_TAKEN_OVER);
                self.taken_over = true;
                let _ = reply.send(self.conn.take_session());
            }
            ToConnection::Shutdown => self.conn.disconnect(ReasonCode::SERVER_SHUTTING_DOWN),
        }
    }

    /// Tells publishers waiting for this connection how far behind it is,
    /// and the node how many QoS 0 messages its queue dropped (the oldest,
    /// when full).
    fn report_backlog(&mut self) {
        let low = self.node.options.mqtt.publisher_wait_backlog_messages / 2;
        self.session
            .report_backlog(self.conn.queued(), self.mailbox.len(), low);
        self.report_drops();
    }

    fn report_drops(&mut self) {
        let dropped = self.conn.stats().qos0_dropped;
        if dropped > self.qos0_dropped_reported {
            self.node
                .router
                .stats
                .dropped_queue_full
                .fetch_add(dropped - self.qos0_dropped_reported, Relaxed);
            self.qos0_dropped_reported = dropped;
        }
    }

    /// Reads spilled messages back from disk once the session's queue has
    /// drained to half its bound, in store order, behind what it holds.
    fn refill(&mut self) {
        if !self.session.spilling.load(Relaxed) || !self.conn.is_open() {
            return;
        }
        let Some(identity) = &self.identity else {
            return;
        };
        let bound = self.node.options.mqtt.session_queue_messages_max;
        let room = bound.saturating_sub(self.conn.pending());
        if room < bound.div_ceil(2) {
            return;
        }
        let client = identity.client_id.clone();
        self.refill_at = None;
        let Some(spill) = self.node.router.spill_window(&client) else {
            self.spilled_from = None;
            return;
        };
        let want = room.min(REFILL_BATCH_MAX);
        let rows = match self
            .node
            .meta
            .mqtt_queue_range(&client, spill.from, spill.last, want)
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "could not read spilled MQTT messages");
                self.refill_at = Some(Instant::now() + REFILL_RETRY);
                return;
            }
        };
        let (now, now_ms) = (Instant::now(), crate::stream::now_ms());
        let found = rows.len();
        let mut next = spill.from;
        for (seq, value) in rows {
            next = seq + 1;
            match super::store::decode_delivery(&value, seq, now, now_ms) {
                Some(mut d) => {
                    d.maybe_sent = spill.maybe_sent;
                    if self.conn.deliver(d).is_err() {
                        // Not open any more: it stays on disk for the next connection.
                        next = seq;
                        break;
                    }
                }
                None => tracing::error!(client, seq, "unreadable held MQTT message; skipped"),
            }
        }
        if found > 0 {
            self.refill_stalled_since = None;
        }
        if self.node.router.unspill(&client, next) {
            self.spilled_from = None;
            self.refill_stalled_since = None;
        } else if found < want {
            // The rest is queued for the store but not durable yet, or was
            // never written (its write failed and its publisher was told).
            let since = *self.refill_stalled_since.get_or_insert(now);
            if found == 0 && now.duration_since(since) >= REFILL_GIVE_UP {
                tracing::error!(
                    client,
                    from = spill.from,
                    last = spill.last,
                    "spilled MQTT messages missing from the store; skipped"
                );
                if self.node.router.unspill(&client, spill.last + 1) {
                    self.spilled_from = None;
                }
                self.refill_stalled_since = None;
            } else {
                self.refill_at = Some(Instant::now() + REFILL_RETRY);
            }
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        while self.conn.poll_transmit(Instant::now(), &mut self.wbuf) {
            self.socket.write_all(&self.wbuf).await?;
            self.stats
                .bytes_out
                .fetch_add(self.wbuf.len() as u64, Relaxed);
            self.wbuf.clear();
        }
        self.socket.flush().await
    }

    async fn handle_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            // The few events that wait (CONNECT, a session write) come back
            // boxed: inline, their state would be part of every idle
            // connection's task, and so would the event held across them.
            if let Some(work) = self.on_event(event) {
                work.await;
            }
        }
    }

    /// Acts on one event; returns the rest of the work if it must wait.
    fn on_event(&mut self, event: Event) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        match event {
            Event::Connect(c) => return Some(Box::pin(self.on_connect(*c))),
            Event::Publish(p) => self.on_publish(p),
            Event::Released { packet_id } => self.on_released(packet_id),
            Event::Subscribe(s) => {
                self.on_subscribe(s);
                return Some(Box::pin(self.persist_session(None)));
            }
            Event::Unsubscribe(u) => {
                self.on_unsubscribe(u);
                return Some(Box::pin(self.persist_session(None)));
            }
            Event::Delivered {
                store_id: Some(seq),
                ..
            }
            | Event::Dropped {
                store_id: Some(seq),
            } => self.forget(seq),
            Event::Delivered { .. } | Event::Dropped { .. } | Event::SessionExpiry { .. } => {}
            Event::Closed(reason) => self.on_closed(reason),
        }
        None
    }

    async fn on_connect(&mut self, c: Connect) {
        let assigned = c
            .client_id
            .is_empty()
            .then(|| format!("sluice-{:016x}", rand::random::<u64>()));
        let client_id = assigned.clone().unwrap_or_else(|| c.client_id.clone());
        // The auth seam: credentials give a principal (and with it, later, a tenant).
        let auth = self.node.auth.clone();
        let (user, password, cid) = (c.username.clone(), c.password.clone(), client_id.clone());
        // Argon2 runs off the I/O threads; with no users file there is nothing to hash.
        let checked = if auth.checks_passwords() {
            tokio::task::spawn_blocking(move || {
                auth.authenticate(user.as_deref(), password.as_deref(), &cid)
            })
            .await
        } else {
            Ok(auth.authenticate(user.as_deref(), password.as_deref(), &cid))
        };
        let principal = match checked {
            Ok(Ok(p)) => p,
            Ok(Err(refusal)) => {
                self.stats.connections_refused.fetch_add(1, Relaxed);
                return self.conn.reject(match refusal {
                    crate::auth::Refusal::BadCredentials => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                    crate::auth::Refusal::NotAuthorized => ReasonCode::NOT_AUTHORIZED,
                });
            }
            Err(_) => return self.conn.reject(ReasonCode::SERVER_UNAVAILABLE),
        };
        if principal.tenant.is_default() && super::namespace::is_reserved(&client_id) {
            // Other tenants' sessions live under this prefix.
            self.stats.connections_refused.fetch_add(1, Relaxed);
            return self.conn.reject(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
        }
        // From here on the client is known by its tenant-scoped id: two
        // tenants' clients may pick the same one without meeting.
        let client_id = super::namespace::client_id(&principal.tenant, &client_id);
        self.tenant = principal.tenant.clone();
        self.meta = self.node.meta_for(&self.tenant);
        if let Some(w) = &c.will {
            // A will is a publish like any other: the same ACL and `$` rule.
            let allowed = super::topic(&w.topic).is_some_and(|t| {
                !t.is_system()
                    && principal.may_publish(&t)
                    && super::namespace::fits(&principal.tenant, &t)
            });
            if !allowed {
                self.stats.connections_refused.fetch_add(1, Relaxed);
                return self.conn.reject(ReasonCode::NOT_AUTHORIZED);
            }
        }
        match self
            .node
            .quotas
            .claim_connection(&principal.tenant, &client_id)
        {
            Ok(slot) => self.connection_slot = slot,
            Err(max) => {
                tracing::info!(tenant = %principal.tenant, max, "MQTT connection refused: the tenant's connection quota is full");
                self.stats.connections_refused.fetch_add(1, Relaxed);
                // 3.1.1 has no such code: it reads "server unavailable".
                return self.conn.reject(ReasonCode::QUOTA_EXCEEDED);
            }
        }
        let expiry_s = match c.version {
            Version::V5 => c
                .properties
                .session_expiry_interval_s
                .unwrap_or(0)
                .min(self.node.options.mqtt.session_expiry_s_max),
            Version::V3_1_1 if c.clean_start => 0,
            Version::V3_1_1 => self.node.options.mqtt.session_expiry_s_max,
        };
        let mut attached =
            self.node
                .router
                .connect(&client_id, c.clean_start, expiry_s, self.mailbox_tx.clone());
        self.session = attached.shared.clone();
        self.spilled_from = None;
        if let Some(previous) = attached.previous.take() {
            let (tx, rx) = oneshot::channel();
            // Both steps are bounded: an old connection stuck on a full socket
            // must not hold its successor's CONNECT forever.
            let asked =
                tokio::time::timeout(TAKEOVER_WAIT, previous.send(ToConnection::TakeOver(tx)))
                    .await;
            if matches!(asked, Ok(Ok(())))
                && let Ok(Ok(handed)) = tokio::time::timeout(TAKEOVER_WAIT, rx).await
                && !c.clean_start
            {
                super::Router::merge_handed_over(handed, &mut attached.session);
                attached.session_present = true;
            }
        }
        // What waits on disk comes back from there, and a stored message
        // routed to this connection while the one it took over from was
        // still spilling joins it, so order holds across the takeover.
        if self.session.spilling.load(Relaxed) {
            self.spilled_from = self.node.router.spill_window(&client_id).map(|s| s.from);
        }
        self.stats.connections_accepted.fetch_add(1, Relaxed);
        // A session that starts fresh, or that ends with this connection,
        // has no business in the store (a clean start, an expired or new
        // session, or expiry 0).
        if attached.had_persistent
            && (!attached.session_present || expiry_s == 0)
            && let Err(e) = self
                .meta
                .apply(vec![MetaWrite::DeleteSession {
                    client: client_id.clone(),
                }])
                .await
        {
            tracing::error!(error = %e, "could not drop a stored MQTT session");
        }
        self.identity = Some(Identity {
            principal,
            client_id,
            connection: attached.connection,
            generation: attached.generation,
            will: c.will.clone(),
        });
        self.persist_session(None).await;
        self.conn.accept(
            Instant::now(),
            Accept {
                session_present: attached.session_present,
                assigned_client_id: assigned,
                session: attached.session,
            },
            &c,
        );
        // Packets the client sent right after CONNECT were held back until now.
        self.conn.handle_input(Instant::now(), &mut self.rbuf);
    }

    /// Routes a publish now; what it waits for (durability) goes into `acks`.
    fn on_publish(&mut self, p: InboundPublish) {
        self.stats.publishes_in.fetch_add(1, Relaxed);
        let Some(topic) = super::topic(&p.topic) else {
            return self.conn.disconnect(ReasonCode::TOPIC_NAME_INVALID);
        };
        if topic.is_system() {
            // `$`-topics are the broker's own; clients may not publish there.
            if let Some(id) = p.packet_id {
                self.conn
                    .publish_done(id, p.qos, ReasonCode::NOT_AUTHORIZED);
            }
            return;
        }
        if self
            .identity
            .as_ref()
            .is_some_and(|i| !i.principal.may_publish(&topic))
        {
            // v5 says why; 3.1.1 has no way to, so its publish is acknowledged and dropped.
            if let Some(id) = p.packet_id {
                self.conn
                    .publish_done(id, p.qos, ReasonCode::NOT_AUTHORIZED);
            }
            return;
        }
        if !super::namespace::fits(&self.tenant, &topic) {
            // Too deep once the tenant's prefix is added (docs/mqtt.md).
            return self.conn.disconnect(ReasonCode::TOPIC_NAME_INVALID);
        }
        let publisher = self.identity.as_ref().map(|i| i.client_id.clone());
        let message = message_from_publish(topic, p.payload, p.properties, crate::stream::now_ms());
        if p.retain
            && let Err(e) = self.node.check_retain(&self.tenant, &message)
        {
            // A new retained topic past the node's or the tenant's limit:
            // 0x97 for QoS 1/2; a QoS 0 or 3.1.1 publish is dropped.
            tracing::debug!(error = %e, "retained publish refused");
            if let Some(id) = p.packet_id {
                self.conn
                    .publish_done(id, p.qos, ReasonCode::QUOTA_EXCEEDED);
            }
            return;
        }
        let pending = match self.node.begin_publish(&self.tenant, &message) {
            Ok(pending) => pending,
            Err(NodeError::Backpressure { .. } | NodeError::RateLimited { .. }) => {
                if let Some(id) = p.packet_id {
                    self.conn
                        .publish_done(id, p.qos, ReasonCode::QUOTA_EXCEEDED);
                }
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "mqtt publish could not be captured");
                if let Some(id) = p.packet_id {
                    self.conn
                        .publish_done(id, p.qos, ReasonCode::UNSPECIFIED_ERROR);
                }
                return;
            }
        };
        // Retained and held copies are queued now, in arrival order; the
        // acknowledgement below only waits for them to be durable.
        let retain_write = p
            .retain
            .then(|| self.node.retain(&self.tenant, &message, p.qos));
        let (subscribers, held, congested) = self.node.route_live(
            &self.tenant,
            &message,
            p.qos,
            p.retain,
            publisher.as_deref(),
        );
        if self.waiting.is_none() {
            // Read nothing more from this publisher until that subscriber,
            // or the metadata writer, catches up.
            if let Some(c) = congested {
                self.waiting = Some(Box::pin(async move { c.drained().await }));
            } else if self.meta.congested() {
                self.node.router.stats.publisher_waits.fetch_add(1, Relaxed);
                let meta = self.meta.clone();
                self.waiting = Some(Box::pin(async move { meta.room().await }));
            }
        }
        let captured = !pending.is_empty();
        // A persistent session records a QoS 2 id before its PUBREC leaves,
        // so a resend after a crash is known for one (MQTT-4.3.3-10).
        let qos2_record = self.qos2_store_key().filter(|_| p.qos == QoS::ExactlyOnce);
        let Some(id) = p.packet_id else {
            // QoS 0: nothing to acknowledge; the appends and the retained write go on without us.
            if let Some(w) = retain_write {
                tokio::spawn(w);
            }
            tokio::spawn(held);
            return;
        };
        let meta = self.meta.clone();
        let recorded = qos2_record.map(|client| {
            let write = MetaWrite::PutQos2Received {
                client: client.clone(),
                packet_id: id.get(),
            };
            (client, meta.enqueue(vec![write]))
        });
        let ack: AckFuture = Box::pin(async move {
            let reason = async {
                if let Some(w) = retain_write
                    && w.await.is_err()
                {
                    return ReasonCode::UNSPECIFIED_ERROR;
                }
                if held.await.is_err() {
                    return ReasonCode::UNSPECIFIED_ERROR;
                }
                match pending.wait().await {
                    Ok(_) if subscribers == 0 && !captured => ReasonCode::NO_MATCHING_SUBSCRIBERS,
                    Ok(_) => ReasonCode::SUCCESS,
                    Err(NodeError::Backpressure { .. }) => ReasonCode::QUOTA_EXCEEDED,
                    Err(_) => ReasonCode::UNSPECIFIED_ERROR,
                }
            }
            .await;
            let Some((client, written)) = recorded else {
                return reason;
            };
            if written.await.is_err() {
                return ReasonCode::UNSPECIFIED_ERROR;
            }
            if reason.is_error() {
                // A refused publish is not held: its id must not make the
                // client's next publish with it look like a resend.
                let forget = MetaWrite::DeleteQos2Received {
                    client,
                    packet_id: id.get(),
                };
                if meta.apply(vec![forget]).await.is_err() {
                    tracing::error!("could not forget a refused QoS 2 packet id");
                }
            }
            reason
        });
        self.acks.push_back((id, Owed::Publish(p.qos), ack));
    }

    /// The client's id in the store when its session outlives the connection.
    fn qos2_store_key(&self) -> Option<String> {
        let identity = self.identity.as_ref()?;
        (self.conn.session_expiry_s() > 0).then(|| identity.client_id.clone())
    }

    /// PUBREL: a persistent session forgets the id on disk before PUBCOMP;
    /// any other answers at once.
    fn on_released(&mut self, packet_id: PacketId) {
        let Some(client) = self.qos2_store_key() else {
            return self.conn.release_done(packet_id);
        };
        let written = self.meta.enqueue(vec![MetaWrite::DeleteQos2Received {
            client,
            packet_id: packet_id.get(),
        }]);
        let ack: AckFuture = Box::pin(async move {
            if let Err(e) = written.await {
                tracing::error!(error = %e, "could not forget a released QoS 2 packet id");
            }
            ReasonCode::SUCCESS
        });
        self.acks.push_back((packet_id, Owed::Release, ack));
    }

    fn on_subscribe(&mut self, s: Subscribe) {
        let Some(identity) = &self.identity else {
            return;
        };
        let client_id = identity.client_id.clone();
        let sub_id = s.properties.subscription_identifier;
        let mut reasons = Vec::with_capacity(s.subscriptions.len());
        let mut retained = Vec::new();
        let now = Instant::now();
        let max = self.node.quotas.subscriptions_per_client_max(
            &identity.principal.tenant,
            self.node.options.mqtt.subscriptions_per_client_max,
        );
        for sub in &s.subscriptions {
            let (share_group, filter_text) = match parse_shared(&sub.filter) {
                Ok(parts) => parts,
                Err(()) => {
                    reasons.push(ReasonCode::TOPIC_FILTER_INVALID);
                    continue;
                }
            };
            let Ok(filter) = TopicFilter::new(filter_text) else {
                reasons.push(ReasonCode::TOPIC_FILTER_INVALID);
                continue;
            };
            let tenant = &identity.principal.tenant;
            if !identity.principal.may_subscribe(&filter)
                || (tenant.is_default() && super::namespace::is_reserved(filter.as_str()))
            {
                reasons.push(ReasonCode::NOT_AUTHORIZED);
                continue;
            }
            let Some(filter) = super::namespace::filter(tenant, &filter) else {
                reasons.push(ReasonCode::TOPIC_FILTER_INVALID);
                continue;
            };
            if share_group.is_some() && sub.no_local {
                // MQTT-3.8.3-4: no-local on a shared subscription is a protocol error.
                return self.conn.disconnect(ReasonCode::PROTOCOL_ERROR);
            }
            let options = SubOptions {
                qos: sub.qos,
                no_local: sub.no_local,
                retain_as_published: sub.retain_as_published,
                subscription_id: sub_id,
                share_group: share_group.map(str::to_owned),
            };
            let Some(is_new) = self
                .node
                .router
                .subscribe(&client_id, filter.clone(), options, max)
            else {
                // The session holds all the subscriptions it may: 0x97
                // (3.1.1: 0x80) for this filter, the others still count.
                reasons.push(ReasonCode::QUOTA_EXCEEDED);
                continue;
            };
            if share_group.is_none() {
                retained.extend(
                    self.node
                        .router
                        .retained_for(&filter, sub, is_new, sub_id, now),
                );
            }
            reasons.push(match sub.qos {
                QoS::AtMostOnce => ReasonCode::GRANTED_QOS_0,
                QoS::AtLeastOnce => ReasonCode::GRANTED_QOS_1,
                QoS::ExactlyOnce => ReasonCode::GRANTED_QOS_2,
            });
        }
        self.conn.suback(s.packet_id, reasons);
        for d in retained {
            let _ = self.conn.deliver(d);
        }
    }

    fn on_unsubscribe(&mut self, u: Unsubscribe) {
        let Some(identity) = &self.identity else {
            return;
        };
        let reasons = u
            .filters
            .iter()
            .map(|f| {
                let tenant = &identity.principal.tenant;
                match parse_shared(f).ok().and_then(|(g, f)| {
                    let f = TopicFilter::new(f).ok()?;
                    super::namespace::filter(tenant, &f).map(|f| (g, f))
                }) {
                    Some((group, filter))
                        if self
                            .node
                            .router
                            .unsubscribe(&identity.client_id, &filter, group) =>
                    {
                        ReasonCode::SUCCESS
                    }
                    Some(_) => ReasonCode::NO_SUBSCRIPTION_EXISTED,
                    None => ReasonCode::TOPIC_FILTER_INVALID,
                }
            })
            .collect();
        self.conn.unsuback(u.packet_id, reasons);
    }

    /// A held message was acknowledged (or discarded): drop its stored copy.
    fn forget(&self, seq: u64) {
        let Some(identity) = &self.identity else {
            return;
        };
        let (meta, client) = (self.meta.clone(), identity.client_id.clone());
        self.session.forgotten();
        tokio::spawn(async move {
            if let Err(e) = meta
                .apply(vec![MetaWrite::DeleteQueued { client, seq }])
                .await
            {
                tracing::error!(error = %e, "could not drop an acknowledged MQTT message from the store");
            }
        });
    }

    /// Writes the session record of a persistent session (subscriptions, expiry).
    async fn persist_session(&mut self, disconnected_ms: Option<i64>) {
        let Some(identity) = &self.identity else {
            return;
        };
        let Some(record) = self
            .node
            .router
            .session_record(&identity.client_id, disconnected_ms)
        else {
            return;
        };
        let record = serde_json::to_vec(&record).expect("session record serialises");
        let write = MetaWrite::PutSession {
            client: identity.client_id.clone(),
            record,
        };
        if let Err(e) = self.meta.apply(vec![write]).await {
            tracing::error!(error = %e, "could not store an MQTT session");
        }
    }

    fn on_closed(&mut self, reason: CloseReason) {
        tracing::debug!(?reason, "mqtt connection closed");
        let Some(identity) = self.identity.take() else {
            return;
        };
        if !self.taken_over {
            let state = self.conn.take_session();
            let expiry_s = self.conn.session_expiry_s();
            let record = self
                .node
                .router
                .session_record(&identity.client_id, Some(crate::stream::now_ms()));
            let applied = self.node.router.disconnected(
                &identity.client_id,
                identity.connection,
                state,
                expiry_s,
            );
            // A connection the router already replaced must not write the
            // successor's session record.
            let write = match record.filter(|_| applied) {
                Some(r) if expiry_s > 0 => Some(MetaWrite::PutSession {
                    client: identity.client_id.clone(),
                    record: serde_json::to_vec(&super::store::StoredSession { expiry_s, ..r })
                        .expect("serialises"),
                }),
                // A session that was persistent ends here (expiry set to 0 at DISCONNECT).
                Some(_) => Some(MetaWrite::DeleteSession {
                    client: identity.client_id.clone(),
                }),
                None => None,
            };
            if let Some(w) = write {
                let meta = self.meta.clone();
                tokio::spawn(async move {
                    if let Err(e) = meta.apply(vec![w]).await {
                        tracing::error!(error = %e, "could not store an MQTT session at disconnect");
                    }
                });
            }
        }
        if reason.publishes_will()
            && let Some(will) = identity.will
        {
            tokio::spawn(publish_will(
                self.node.clone(),
                self.tenant.clone(),
                identity.client_id,
                will,
            ));
        }
    }
}

/// Publishes a will after its delay, unless the client came back meanwhile
/// (MQTT 5 §3.1.3.2.2).
async fn publish_will(node: Arc<Node>, tenant: TenantId, client_id: String, will: Will) {
    let delay = will.properties.will_delay_interval_s.unwrap_or(0);
    if delay > 0 {
        tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
        if node.router.is_connected(&client_id) {
            return;
        }
    }
    let Some(topic) = super::topic(&will.topic) else {
        return;
    };
    let props = sluice_mqtt::PublishProperties {
        payload_format_indicator: will.properties.payload_format_indicator,
        message_expiry_interval_s: will.properties.message_expiry_interval_s,
        topic_alias: None,
        response_topic: will.properties.response_topic.clone(),
        correlation_data: will.properties.correlation_data.clone(),
        user_properties: will.properties.user_properties.clone(),
        subscription_identifiers: Vec::new(),
        content_type: will.properties.content_type.clone(),
    };
    let message = message_from_publish(topic, will.payload, props, crate::stream::now_ms());
    let retain = will.retain
        && match node.check_retain(&tenant, &message) {
            Ok(()) => true,
            Err(e) => {
                // Still published, like any will, but not retained.
                tracing::warn!(client_id, error = %e, "a will's retained copy refused");
                false
            }
        };
    if retain && node.retain(&tenant, &message, will.qos).await.is_err() {
        tracing::error!(client_id, "could not store a retained will");
    }
    let pending = node.begin_publish(&tenant, &message);
    let (_, held, _) = node.route_live(&tenant, &message, will.qos, retain, None);
    if let Ok(p) = pending {
        let _ = p.wait().await;
    }
    let _ = held.await;
}

/// Splits `$share/{group}/{filter}` into its group and filter.
fn parse_shared(filter: &str) -> Result<(Option<&str>, &str), ()> {
    let Some(rest) = filter.strip_prefix("$share/") else {
        return Ok((None, filter));
    };
    let (group, f) = rest.split_once('/').ok_or(())?;
    if group.is_empty() || group.contains(['+', '#']) || f.is_empty() {
        return Err(());
    }
    Ok((Some(group), f))
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_shared;

    #[test]
    fn shared_filters_split_into_group_and_filter() {
        assert_eq!(parse_shared("a/b"), Ok((None, "a/b")));
        assert_eq!(parse_shared("$share/g1/a/+"), Ok((Some("g1"), "a/+")));
        assert_eq!(parse_shared("$share/g1"), Err(()));
        assert_eq!(parse_shared("$share//a"), Err(()));
        assert_eq!(parse_shared("$share/g+/a"), Err(()));
    }
}

#[cfg(test)]
mod size_tests {
    use std::sync::Arc;

    #[tokio::test]
    async fn an_idle_connection_task_is_small() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = crate::options::NodeOptions::embedded_default();
        options.data_dir = dir.path().to_owned();
        let node = crate::node::Node::open(options).await.unwrap();
        let (a, _b) = tokio::io::duplex(64);
        let task = super::Task::new(node, Arc::default(), a);
        eprintln!(
            "connection task: {} bytes, of which Connection {} and Identity {}",
            std::mem::size_of_val(&task),
            std::mem::size_of::<sluice_mqtt::Connection>(),
            std::mem::size_of::<Option<super::Identity>>(),
        );
        let run = task.run();
        let bytes = std::mem::size_of_val(&run);
        eprintln!("connection task future: {bytes} bytes");
        assert!(
            bytes < 4096,
            "a connection task's future is {bytes} bytes; box its large awaits"
        );
    }
}
