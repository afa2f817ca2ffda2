//! The protocol state machine of one MQTT network connection, sans-IO: it
//! takes bytes and time and gives back bytes and events, and never touches a
//! socket or reads the clock (the shape of quinn-proto's `Connection`).
//!
//! Inputs are the `handle_*` methods and the broker's answers
//! ([`Connection::accept`], [`Connection::publish_done`], …); outputs are
//! [`Connection::poll_transmit`], [`Connection::poll_event`] and
//! [`Connection::poll_timeout`]. The broker's connection task only moves
//! bytes between these and the socket.
//!
//! What outlives a connection — the in-flight and queued messages of a
//! persistent session, and the QoS 2 packet ids awaiting PUBREL — lives in
//! [`SessionState`], which the broker hands in at `accept` and takes back
//! from [`Connection::take_session`] when the connection ends.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::{
    ConnAck, ConnAckProperties, Connect, DecodeError, Disconnect, DisconnectProperties,
    EncodeError, Packet, PacketId, PubAck, Publish, PublishProperties, QoS, ReasonCode, SubAck,
    Subscribe, UnsubAck, Unsubscribe, Version, decode, encode,
};

/// What the server allows and promises; fixed for a listener.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Largest packet accepted from the client (CONNACK Maximum Packet Size).
    pub packet_bytes_max: usize,
    /// QoS 1/2 publishes the client may have unacknowledged (CONNACK Receive Maximum).
    pub receive_maximum: u16,
    /// Topic aliases the client may use towards us.
    pub topic_alias_maximum: u16,
    /// Keep-alive the server imposes when the client asks for none or more.
    pub keep_alive_s_max: u16,
    /// Longest session expiry granted, in seconds.
    pub session_expiry_s_max: u32,
    /// How long a new connection may take to send CONNECT.
    pub connect_timeout: Duration,
    /// QoS 0 messages queued for a slow client; past this the oldest is dropped and counted.
    pub qos0_queue_messages_max: usize,
    /// QoS 1/2 messages queued beyond the in-flight window; past this `deliver` refuses.
    pub pending_messages_max: usize,
    /// Bytes of encoded packets buffered for the socket before queues stop draining.
    pub transmit_bytes_max: usize,
    /// Whether `$share/…` subscriptions are offered (CONNACK property).
    pub shared_subscriptions: bool,
    /// QoS 1/2 messages sent to the client and not yet acknowledged, at
    /// most, whatever larger Receive Maximum the client offers: a client
    /// that stops reading holds this many, not 65,535.
    pub inflight_messages_max: u16,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            packet_bytes_max: 1 << 20,
            receive_maximum: 1024,
            topic_alias_maximum: 64,
            keep_alive_s_max: 3600,
            session_expiry_s_max: 7 * 86_400,
            connect_timeout: Duration::from_secs(10),
            qos0_queue_messages_max: 1000,
            pending_messages_max: 10_000,
            transmit_bytes_max: 256 * 1024,
            shared_subscriptions: true,
            inflight_messages_max: 1024,
        }
    }
}

/// A message on its way to this client, already shaped for it by the broker
/// (QoS capped by the subscription, retain flag and subscription ids set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub properties: PublishProperties,
    /// When the message expires; it is dropped instead of sent after this, and
    /// the remaining interval is what the client is told.
    pub expires_at: Option<Instant>,
    /// The broker's id for a stored copy (persistent sessions), handed back
    /// in [`Event::Delivered`]; opaque here.
    pub store_id: Option<u64>,
    /// The message may have reached the client before (restored after a
    /// broker restart): its first send carries DUP.
    pub maybe_sent: bool,
}

/// One outgoing QoS 1/2 message awaiting its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub delivery: Delivery,
    /// `true` once PUBREC arrived (QoS 2): only PUBREL/PUBCOMP remain.
    pub released: bool,
}

/// The part of a session that must survive its connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionState {
    /// Sent, not yet acknowledged; resent with DUP on the next connection.
    pub inflight: BTreeMap<u16, Outgoing>,
    /// QoS 1/2 messages waiting for room in the client's receive window.
    pub pending: VecDeque<Delivery>,
    /// QoS 2 packet ids received and acknowledged with PUBREC, awaiting PUBREL.
    pub incoming_qos2: BTreeSet<u16>,
    last_packet_id: u16,
}

impl SessionState {
    /// Messages the session holds for its client (in flight or waiting).
    pub fn queued(&self) -> usize {
        self.inflight.len() + self.pending.len()
    }
}

/// A PUBLISH from the client, with its topic alias already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundPublish {
    pub packet_id: Option<PacketId>,
    pub qos: QoS,
    pub retain: bool,
    pub topic: String,
    pub payload: Bytes,
    pub properties: PublishProperties,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent DISCONNECT; `with_will` when it asked for its will (0x04).
    ClientDisconnect { with_will: bool },
    /// Nothing heard for 1.5 × keep-alive.
    KeepAliveTimeout,
    /// CONNECT did not arrive in time.
    ConnectTimeout,
    /// The client broke the protocol; we sent DISCONNECT with `reason` where the version allows.
    ProtocolError { reason: ReasonCode, detail: String },
    /// The broker closed it (takeover, shutdown, rejected CONNECT, …).
    Server { reason: ReasonCode },
    /// The socket closed without DISCONNECT.
    TransportClosed,
}

impl CloseReason {
    /// Whether the will is published: on any end but a clean DISCONNECT
    /// (MQTT-3.1.2-8), and on DISCONNECT with reason 0x04.
    pub fn publishes_will(&self) -> bool {
        match self {
            CloseReason::ClientDisconnect { with_will } => *with_will,
            CloseReason::Server { reason } => *reason != ReasonCode::SUCCESS,
            _ => true,
        }
    }
}

/// What the broker must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Authenticate, find the session, then call `accept` or `reject`.
    Connect(Box<Connect>),
    /// Route it; for QoS 1/2 answer with `publish_done`.
    Publish(InboundPublish),
    /// Answer with `suback`, then deliver retained messages.
    Subscribe(Subscribe),
    /// Answer with `unsuback`.
    Unsubscribe(Unsubscribe),
    /// The client released a QoS 2 publish (PUBREL): the broker forgets the
    /// packet id wherever it keeps it, then answers with `release_done`,
    /// which sends PUBCOMP. Until PUBCOMP the client will not reuse the id,
    /// so a broker that records ids durably never mistakes a new publish for
    /// a resend.
    Released { packet_id: PacketId },
    /// An outgoing QoS 1/2 message completed (PUBACK or PUBCOMP); the
    /// broker may forget its stored copy (`store_id`).
    Delivered {
        packet_id: u16,
        store_id: Option<u64>,
    },
    /// An outgoing QoS 1/2 message was discarded unsent (expired, or larger
    /// than the client accepts); the broker may forget its stored copy.
    Dropped { store_id: Option<u64> },
    /// The client changed its session expiry at DISCONNECT.
    SessionExpiry { seconds: u32 },
    /// The connection is over; nothing more will be read or written.
    Closed(CloseReason),
}

/// `deliver` could not take the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Backpressure {
    #[error("the session's queue holds {0} messages, its limit")]
    QueueFull(usize),
    #[error("the connection is not open")]
    NotConnected,
}

/// Broker's answer to a CONNECT.
#[derive(Debug, Clone, Default)]
pub struct Accept {
    pub session_present: bool,
    /// The client id we assigned when the client sent none.
    pub assigned_client_id: Option<String>,
    pub session: SessionState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingConnect,
    AwaitingAccept,
    Open,
    Closed,
}

/// Counters for `$SYS` and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    pub packets_in: u64,
    pub packets_out: u64,
    pub publishes_in: u64,
    pub publishes_out: u64,
    pub qos0_dropped: u64,
    pub expired_dropped: u64,
    pub oversize_dropped: u64,
}

pub struct Connection {
    config: ConnectionConfig,
    phase: Phase,
    version: Version,
    out: BytesMut,
    events: VecDeque<Event>,
    stats: ConnectionStats,
    deadline: Option<Instant>,
    keep_alive: Option<Duration>,
    session_expiry_s: u32,
    // Inbound.
    inbound_aliases: HashMap<u16, String>,
    /// QoS 1/2 publishes handed to the broker and not yet answered.
    inbound_unacked: BTreeSet<u16>,
    // Outbound.
    client_receive_maximum: u16,
    client_packet_bytes_max: usize,
    client_alias_maximum: u16,
    outbound_aliases: HashMap<String, u16>,
    qos0: VecDeque<Delivery>,
    session: SessionState,
}

impl Connection {
    /// A connection that has just been accepted by the listener.
    pub fn new(config: ConnectionConfig, now: Instant) -> Self {
        let deadline = Some(now + config.connect_timeout);
        Self {
            config,
            phase: Phase::AwaitingConnect,
            version: Version::V5,
            out: BytesMut::new(),
            events: VecDeque::new(),
            stats: ConnectionStats::default(),
            deadline,
            keep_alive: None,
            session_expiry_s: 0,
            inbound_aliases: HashMap::new(),
            inbound_unacked: BTreeSet::new(),
            client_receive_maximum: u16::MAX,
            client_packet_bytes_max: crate::PACKET_BYTES_MAX,
            client_alias_maximum: 0,
            outbound_aliases: HashMap::new(),
            qos0: VecDeque::new(),
            session: SessionState::default(),
        }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn stats(&self) -> ConnectionStats {
        self.stats
    }

    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// QoS 1/2 messages waiting for room in the client's receive window.
    pub fn pending(&self) -> usize {
        self.session.pending.len()
    }

    /// Messages queued for the client and not yet encoded for the socket,
    /// QoS 0 included.
    pub fn queued(&self) -> usize {
        self.session.pending.len() + self.qos0.len()
    }

    /// The session expiry in force (CONNECT's, possibly changed at DISCONNECT).
    pub fn session_expiry_s(&self) -> u32 {
        self.session_expiry_s
    }

    /// Feeds bytes read from the socket. Whole packets are consumed; a
    /// partial one stays in `buf` for the next read. While the broker has not
    /// answered CONNECT, nothing after it is decoded (clients may send before
    /// CONNACK, MQTT-3.1.4-5): call this again with the same buffer after
    /// [`Connection::accept`].
    pub fn handle_input(&mut self, now: Instant, buf: &mut BytesMut) {
        while matches!(self.phase, Phase::AwaitingConnect | Phase::Open) {
            let packet = match decode(buf, self.version, self.config.packet_bytes_max) {
                Ok(Some(p)) => p,
                Ok(None) => return,
                Err(e) => return self.decode_failed(e),
            };
            self.stats.packets_in += 1;
            if let Some(ka) = self.keep_alive {
                self.deadline = Some(now + ka + ka / 2);
            }
            self.handle_packet(packet);
        }
    }

    /// The socket reached end of file or failed.
    pub fn handle_transport_closed(&mut self) {
        self.close(CloseReason::TransportClosed);
    }

    /// Time passed; checks the keep-alive and the CONNECT deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(d) if now >= d => {
                let reason = if self.phase == Phase::AwaitingConnect {
                    CloseReason::ConnectTimeout
                } else {
                    CloseReason::KeepAliveTimeout
                };
                if self.phase == Phase::Open {
                    self.send_disconnect(ReasonCode::KEEP_ALIVE_TIMEOUT);
                }
                self.close(reason);
            }
            _ => {}
        }
    }

    /// When `handle_timeout` next needs calling.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            None
        } else {
            self.deadline
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Frees the room of empty queues and buffers when nothing is queued,
    /// so an idle connection holds no capacity it once needed (an event
    /// queue sized for a CONNECT, a transmit buffer sized for a burst).
    /// Returns whether it did; call it when the connection goes quiet, not
    /// on every turn, or busy connections pay for reallocating.
    pub fn release_idle_buffers(&mut self) -> bool {
        let s = &self.session;
        if !(self.events.is_empty()
            && self.out.is_empty()
            && self.qos0.is_empty()
            && s.pending.is_empty()
            && s.inflight.is_empty())
        {
            return false;
        }
        self.events = VecDeque::new();
        self.out = BytesMut::new();
        self.qos0 = VecDeque::new();
        self.session.pending = VecDeque::new();
        true
    }

    /// Moves encoded packets into `out` for the socket, draining queued
    /// messages while the socket's buffer has room. Returns whether anything
    /// was added.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut BytesMut) -> bool {
        self.fill(now);
        if self.out.is_empty() {
            return false;
        }
        out.extend_from_slice(&self.out);
        self.out.clear();
        true
    }

    /// The broker accepts the CONNECT.
    pub fn accept(&mut self, now: Instant, accept: Accept, connect: &Connect) {
        if self.phase != Phase::AwaitingAccept {
            return;
        }
        self.phase = Phase::Open;
        let p = &connect.properties;
        self.client_receive_maximum = p
            .receive_maximum
            .unwrap_or(u16::MAX)
            .min(self.config.inflight_messages_max.max(1));
        self.client_packet_bytes_max = p
            .maximum_packet_size
            .map_or(crate::PACKET_BYTES_MAX, |m| m as usize);
        self.client_alias_maximum = p.topic_alias_maximum.unwrap_or(0);
        self.session_expiry_s = if self.version == Version::V5 {
            p.session_expiry_interval_s
                .unwrap_or(0)
                .min(self.config.session_expiry_s_max)
        } else if connect.clean_start {
            0
        } else {
            self.config.session_expiry_s_max
        };
        let (keep_alive_s, server_keep_alive) = match connect.keep_alive_s {
            0 => (self.config.keep_alive_s_max, true),
            k if k > self.config.keep_alive_s_max => (self.config.keep_alive_s_max, true),
            k => (k, false),
        };
        // 3.1.1 has no way to tell the client about a server keep-alive, so
        // there we honour whatever it asked for (0 means none).
        let keep_alive_s = if self.version == Version::V3_1_1 {
            connect.keep_alive_s
        } else {
            keep_alive_s
        };
        self.keep_alive = (keep_alive_s > 0).then(|| Duration::from_secs(u64::from(keep_alive_s)));
        self.deadline = self.keep_alive.map(|ka| now + ka + ka / 2);
        self.session = accept.session;
        let mut props = ConnAckProperties {
            receive_maximum: Some(self.config.receive_maximum),
            maximum_packet_size: Some(self.config.packet_bytes_max as u32),
            topic_alias_maximum: Some(self.config.topic_alias_maximum),
            assigned_client_identifier: accept.assigned_client_id,
            shared_subscription_available: Some(self.config.shared_subscriptions),
            ..ConnAckProperties::default()
        };
        if p.session_expiry_interval_s.unwrap_or(0) > self.session_expiry_s {
            props.session_expiry_interval_s = Some(self.session_expiry_s);
        }
        if server_keep_alive && self.version == Version::V5 {
            props.server_keep_alive_s = Some(keep_alive_s);
        }
        self.send(Packet::ConnAck(ConnAck {
            session_present: accept.session_present,
            reason: ReasonCode::SUCCESS,
            properties: props,
        }));
        // Resend what the previous connection left unacknowledged (MQTT-4.4.0-1).
        let inflight: Vec<(u16, Outgoing)> = self
            .session
            .inflight
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (id, o) in inflight {
            let pid = PacketId::new(id).expect("stored ids are non-zero");
            if o.released {
                self.send(Packet::PubRel(PubAck::new(pid)));
            } else {
                self.send_publish(now, pid, &o.delivery, true);
            }
        }
    }

    /// The broker refuses the CONNECT (bad credentials, not authorised, …).
    pub fn reject(&mut self, reason: ReasonCode) {
        if self.phase != Phase::AwaitingAccept {
            return;
        }
        let reason = if self.version == Version::V3_1_1 {
            v3_connack_reason(reason)
        } else {
            reason
        };
        self.send(Packet::ConnAck(ConnAck {
            session_present: false,
            reason,
            properties: ConnAckProperties::default(),
        }));
        self.close(CloseReason::Server { reason });
    }

    /// The broker has routed (and made durable) a QoS 1/2 publish.
    pub fn publish_done(&mut self, packet_id: PacketId, qos: QoS, reason: ReasonCode) {
        if !self.inbound_unacked.remove(&packet_id.get()) || self.phase != Phase::Open {
            return;
        }
        // 3.1.1 acknowledgements carry no reason: a refused publish is acknowledged and dropped.
        let reason = if self.version == Version::V3_1_1 {
            ReasonCode::SUCCESS
        } else {
            reason
        };
        let ack = PubAck {
            reason,
            ..PubAck::new(packet_id)
        };
        match qos {
            QoS::AtLeastOnce => self.send(Packet::PubAck(ack)),
            QoS::ExactlyOnce => {
                if reason.is_error() {
                    self.session.incoming_qos2.remove(&packet_id.get());
                }
                self.send(Packet::PubRec(ack));
            }
            QoS::AtMostOnce => {}
        }
    }

    /// The broker has forgotten a released QoS 2 packet id ([`Event::Released`]).
    pub fn release_done(&mut self, packet_id: PacketId) {
        if self.phase == Phase::Open {
            self.send(Packet::PubComp(PubAck::new(packet_id)));
        }
    }

    pub fn suback(&mut self, packet_id: PacketId, reasons: Vec<ReasonCode>) {
        if self.phase == Phase::Open {
            self.send(Packet::SubAck(SubAck {
                packet_id,
                reasons,
                properties: Default::default(),
            }));
        }
    }

    pub fn unsuback(&mut self, packet_id: PacketId, reasons: Vec<ReasonCode>) {
        if self.phase == Phase::Open {
            self.send(Packet::UnsubAck(UnsubAck {
                packet_id,
                reasons,
                properties: Default::default(),
            }));
        }
    }

    /// Queues a message for the client. QoS 0 to a slow client drops the
    /// oldest QoS 0 message past the limit (counted); QoS 1/2 wait for room
    /// in the client's receive window and are refused past the limit.
    pub fn deliver(&mut self, delivery: Delivery) -> Result<(), Backpressure> {
        if self.phase != Phase::Open {
            return Err(Backpressure::NotConnected);
        }
        if delivery.qos == QoS::AtMostOnce {
            if self.qos0.len() >= self.config.qos0_queue_messages_max {
                self.qos0.pop_front();
                self.stats.qos0_dropped += 1;
            }
            self.qos0.push_back(delivery);
            return Ok(());
        }
        if self.session.pending.len() >= self.config.pending_messages_max {
            return Err(Backpressure::QueueFull(self.session.pending.len()));
        }
        self.session.pending.push_back(delivery);
        Ok(())
    }

    /// Ends the connection from the server side with `reason`, sending
    /// DISCONNECT where the version has one.
    pub fn disconnect(&mut self, reason: ReasonCode) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.phase == Phase::Open {
            self.send_disconnect(reason);
        }
        self.close(CloseReason::Server { reason });
    }

    /// Takes the session state (for a persistent session) once the connection ends.
    pub fn take_session(&mut self) -> SessionState {
        let mut s = std::mem::take(&mut self.session);
        // QoS 0 is never kept for an offline session.
        self.qos0.clear();
        // Messages not yet sent keep their order behind what is in flight.
        s.pending.make_contiguous();
        s
    }

    fn decode_failed(&mut self, e: DecodeError) {
        let reason = e.reason_code();
        if self.phase == Phase::AwaitingConnect
            && reason == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
        {
            // The client speaks a level we do not: answer in 3.1.1's words,
            // which every version can read (MQTT-3.1.2-2).
            self.version = Version::V3_1_1;
            self.send(Packet::ConnAck(ConnAck {
                session_present: false,
                reason: ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                properties: Default::default(),
            }));
            return self.close(CloseReason::ProtocolError {
                reason,
                detail: e.to_string(),
            });
        }
        self.protocol_error(reason, e.to_string());
    }

    fn protocol_error(&mut self, reason: ReasonCode, detail: String) {
        // Before a valid CONNECT we do not know who we are talking to (or
        // in which version), so the connection just closes (MQTT-3.1.4-1).
        if self.phase == Phase::Open {
            self.send_disconnect(reason);
        }
        self.close(CloseReason::ProtocolError { reason, detail });
    }

    fn close(&mut self, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.deadline = None;
        self.events.push_back(Event::Closed(reason));
    }

    fn send_disconnect(&mut self, reason: ReasonCode) {
        if self.version == Version::V5 {
            self.send(Packet::Disconnect(Disconnect {
                reason,
                properties: DisconnectProperties::default(),
            }));
        }
    }

    fn send(&mut self, packet: Packet) {
        match encode(
            &packet,
            self.version,
            self.client_packet_bytes_max,
            &mut self.out,
        ) {
            Ok(()) => self.stats.packets_out += 1,
            // Control packets are small; only reason strings could push them
            // over a tiny client limit, and we send none.
            Err(e) => debug_assert!(false, "control packet did not encode: {e}"),
        }
    }

    fn handle_packet(&mut self, packet: Packet) {
        match (self.phase, packet) {
            (Phase::AwaitingConnect, Packet::Connect(c)) => self.on_connect(c),
            (Phase::AwaitingConnect, other) => self.protocol_error(
                ReasonCode::PROTOCOL_ERROR,
                format!("expected CONNECT, got {:?}", other.packet_type()),
            ),
            (Phase::AwaitingAccept, _) => {
                unreachable!("input is not decoded while awaiting the broker")
            }
            (Phase::Open, Packet::Connect(_)) => {
                self.protocol_error(ReasonCode::PROTOCOL_ERROR, "second CONNECT".into())
            }
            (Phase::Open, Packet::Publish(p)) => self.on_publish(p),
            (Phase::Open, Packet::PubAck(a)) => {
                self.complete(a.packet_id.get(), |o| o.delivery.qos == QoS::AtLeastOnce)
            }
            (Phase::Open, Packet::PubRec(a)) => {
                let id = a.packet_id.get();
                match self.session.inflight.get_mut(&id) {
                    Some(o) if o.delivery.qos == QoS::ExactlyOnce => {
                        if a.reason.is_error() {
                            self.complete(id, |_| true);
                        } else {
                            o.released = true;
                            self.send(Packet::PubRel(PubAck::new(a.packet_id)));
                        }
                    }
                    _ => self.send(Packet::PubRel(PubAck {
                        reason: if self.version == Version::V5 {
                            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
                        } else {
                            ReasonCode::SUCCESS
                        },
                        ..PubAck::new(a.packet_id)
                    })),
                }
            }
            (Phase::Open, Packet::PubComp(a)) => self.complete(a.packet_id.get(), |o| o.released),
            (Phase::Open, Packet::PubRel(a)) => {
                if self.session.incoming_qos2.remove(&a.packet_id.get()) {
                    self.events.push_back(Event::Released {
                        packet_id: a.packet_id,
                    });
                } else {
                    let reason = if self.version == Version::V3_1_1 {
                        ReasonCode::SUCCESS
                    } else {
                        ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
                    };
                    self.send(Packet::PubComp(PubAck {
                        reason,
                        ..PubAck::new(a.packet_id)
                    }));
                }
            }
            (Phase::Open, Packet::Subscribe(s)) => self.events.push_back(Event::Subscribe(s)),
            (Phase::Open, Packet::Unsubscribe(u)) => self.events.push_back(Event::Unsubscribe(u)),
            (Phase::Open, Packet::PingReq) => self.send(Packet::PingResp),
            (Phase::Open, Packet::Disconnect(d)) => self.on_disconnect(d),
            (Phase::Open, Packet::Auth(_)) => self.protocol_error(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH without an authentication method".into(),
            ),
            (Phase::Open, other) => self.protocol_error(
                ReasonCode::PROTOCOL_ERROR,
                format!("a client may not send {:?}", other.packet_type()),
            ),
            (Phase::Closed, _) => {}
        }
    }

    /// Ends an outgoing message's handshake if `done` agrees it is at its last step.
    fn complete(&mut self, id: u16, done: impl Fn(&Outgoing) -> bool) {
        if self.session.inflight.get(&id).is_some_and(done) {
            let o = self.session.inflight.remove(&id).expect("checked above");
            self.events.push_back(Event::Delivered {
                packet_id: id,
                store_id: o.delivery.store_id,
            });
        }
    }

    fn on_connect(&mut self, c: Connect) {
        self.version = c.version;
        if c.properties.authentication_method.is_some() {
            // Enhanced authentication is declined cleanly (MQTT 5 §4.12).
            self.phase = Phase::AwaitingAccept;
            return self.reject(ReasonCode::BAD_AUTHENTICATION_METHOD);
        }
        if c.client_id.is_empty() && !c.clean_start && c.version == Version::V3_1_1 {
            // MQTT-3.1.3-8: a persistent session needs a client id.
            self.phase = Phase::AwaitingAccept;
            return self.reject(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
        }
        if let Some(w) = &c.will
            && let Err(reason) = check_topic_name(&w.topic)
        {
            self.phase = Phase::AwaitingConnect;
            return self.protocol_error(reason, format!("will topic {:?} is invalid", w.topic));
        }
        self.phase = Phase::AwaitingAccept;
        // No keep-alive runs until the broker answers; the connect deadline stays.
        self.events.push_back(Event::Connect(Box::new(c)));
    }

    fn on_disconnect(&mut self, d: Disconnect) {
        if let Some(s) = d.properties.session_expiry_interval_s {
            if self.session_expiry_s == 0 && s != 0 {
                // MQTT-3.14.2-2: a session that was to end cannot be revived here.
                return self.protocol_error(
                    ReasonCode::PROTOCOL_ERROR,
                    "session expiry set at DISCONNECT after 0 at CONNECT".into(),
                );
            }
            self.session_expiry_s = s.min(self.config.session_expiry_s_max);
            self.events.push_back(Event::SessionExpiry {
                seconds: self.session_expiry_s,
            });
        }
        let with_will = d.reason == ReasonCode::DISCONNECT_WITH_WILL_MESSAGE;
        self.close(CloseReason::ClientDisconnect { with_will });
    }

    fn on_publish(&mut self, mut p: Publish) {
        self.stats.publishes_in += 1;
        // Topic aliases (v5 §3.3.2.3.4): an alias with a topic sets it, an
        // alias alone uses it.
        if let Some(alias) = p.properties.topic_alias.take() {
            if alias == 0 || alias > self.config.topic_alias_maximum {
                return self.protocol_error(
                    ReasonCode::TOPIC_ALIAS_INVALID,
                    format!("topic alias {alias}"),
                );
            }
            if p.topic.is_empty() {
                match self.inbound_aliases.get(&alias) {
                    Some(t) => p.topic = t.clone(),
                    None => {
                        return self.protocol_error(
                            ReasonCode::PROTOCOL_ERROR,
                            format!("unknown topic alias {alias}"),
                        );
                    }
                }
            } else {
                self.inbound_aliases.insert(alias, p.topic.clone());
            }
        }
        if let Err(reason) = check_topic_name(&p.topic) {
            return self.protocol_error(reason, format!("topic name {:?} is invalid", p.topic));
        }
        match (p.qos, p.packet_id) {
            (QoS::AtMostOnce, _) => {}
            (_, None) => unreachable!("the codec guarantees a packet id for QoS > 0"),
            (qos, Some(id)) => {
                if qos == QoS::ExactlyOnce && self.session.incoming_qos2.contains(&id.get()) {
                    // A resend of a QoS 2 publish we already hold: acknowledge
                    // again, never deliver twice (MQTT-4.3.3-10).
                    if !self.inbound_unacked.contains(&id.get()) {
                        self.send(Packet::PubRec(PubAck::new(id)));
                    }
                    return;
                }
                if self.inbound_unacked.contains(&id.get()) {
                    // A DUP of a publish still being routed: its ack will come.
                    return;
                }
                if self.inbound_unacked.len() >= usize::from(self.config.receive_maximum) {
                    return self.protocol_error(
                        ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                        format!(
                            "more than {} unacknowledged publishes",
                            self.config.receive_maximum
                        ),
                    );
                }
                self.inbound_unacked.insert(id.get());
                if qos == QoS::ExactlyOnce {
                    self.session.incoming_qos2.insert(id.get());
                }
            }
        }
        self.events.push_back(Event::Publish(InboundPublish {
            packet_id: p.packet_id,
            qos: p.qos,
            retain: p.retain,
            topic: p.topic,
            payload: p.payload,
            properties: p.properties,
        }));
    }

    /// Encodes queued messages while the transmit buffer has room.
    fn fill(&mut self, now: Instant) {
        if self.phase != Phase::Open {
            return;
        }
        while self.out.len() < self.config.transmit_bytes_max {
            if self.session.inflight.len() < usize::from(self.client_receive_maximum)
                && let Some(d) = self.session.pending.pop_front()
            {
                if expired(&d, now) {
                    self.stats.expired_dropped += 1;
                    self.events.push_back(Event::Dropped {
                        store_id: d.store_id,
                    });
                    continue;
                }
                let Some(id) = self.next_packet_id() else {
                    self.session.pending.push_front(d);
                    break;
                };
                if self.send_publish(now, id, &d, false) {
                    self.session.inflight.insert(
                        id.get(),
                        Outgoing {
                            delivery: d,
                            released: false,
                        },
                    );
                } else {
                    self.events.push_back(Event::Dropped {
                        store_id: d.store_id,
                    });
                }
                continue;
            }
            let Some(d) = self.qos0.pop_front() else {
                break;
            };
            if expired(&d, now) {
                self.stats.expired_dropped += 1;
                continue;
            }
            let _ = self.encode_publish(now, None, &d, false);
        }
    }

    fn next_packet_id(&mut self) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            self.session.last_packet_id = self.session.last_packet_id.wrapping_add(1).max(1);
            let id = self.session.last_packet_id;
            if !self.session.inflight.contains_key(&id) {
                return PacketId::new(id);
            }
        }
        None
    }

    /// Sends a QoS 1/2 publish; `false` when it cannot be sent at all (too
    /// large for the client), in which case it is dropped (MQTT-3.1.2-25).
    fn send_publish(&mut self, now: Instant, id: PacketId, d: &Delivery, dup: bool) -> bool {
        self.encode_publish(now, Some(id), d, dup)
    }

    fn encode_publish(
        &mut self,
        now: Instant,
        id: Option<PacketId>,
        d: &Delivery,
        dup: bool,
    ) -> bool {
        let mut properties = d.properties.clone();
        properties.message_expiry_interval_s = d
            .expires_at
            .map(|at| {
                at.saturating_duration_since(now)
                    .as_secs()
                    .max(1)
                    .min(u64::from(u32::MAX)) as u32
            })
            .or(properties.message_expiry_interval_s);
        let mut topic = d.topic.clone();
        // A new alias is only remembered once the packet that announces it is
        // actually written; a dropped packet must not leave the client an
        // alias it never learned.
        let mut new_alias = None;
        if self.version == Version::V5 && self.client_alias_maximum > 0 {
            if let Some(alias) = self.outbound_aliases.get(&d.topic) {
                properties.topic_alias = Some(*alias);
                topic.clear();
            } else if self.outbound_aliases.len() < usize::from(self.client_alias_maximum) {
                let alias = self.outbound_aliases.len() as u16 + 1;
                new_alias = Some(alias);
                properties.topic_alias = Some(alias);
            }
        }
        let packet = Packet::Publish(Publish {
            dup: dup || (d.maybe_sent && d.qos != QoS::AtMostOnce),
            qos: d.qos,
            retain: d.retain,
            topic,
            packet_id: id,
            payload: d.payload.clone(),
            properties,
        });
        match encode(
            &packet,
            self.version,
            self.client_packet_bytes_max,
            &mut self.out,
        ) {
            Ok(()) => {
                self.stats.packets_out += 1;
                self.stats.publishes_out += 1;
                if let Some(alias) = new_alias {
                    self.outbound_aliases.insert(d.topic.clone(), alias);
                }
                true
            }
            Err(EncodeError::PacketTooLarge { .. }) => {
                self.stats.oversize_dropped += 1;
                false
            }
            Err(e) => {
                debug_assert!(false, "publish did not encode: {e}");
                false
            }
        }
    }
}

fn expired(d: &Delivery, now: Instant) -> bool {
    d.expires_at.is_some_and(|at| now >= at)
}

/// MQTT topic names: non-empty, no wildcards (the codec already checked UTF-8).
fn check_topic_name(topic: &str) -> Result<(), ReasonCode> {
    if topic.is_empty() || topic.contains(['+', '#']) {
        Err(ReasonCode::TOPIC_NAME_INVALID)
    } else {
        Ok(())
    }
}

/// The 3.1.1 CONNACK return code closest to a v5 reason.
fn v3_connack_reason(reason: ReasonCode) -> ReasonCode {
    match reason {
        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION => reason,
        ReasonCode::CLIENT_IDENTIFIER_NOT_VALID => reason,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD => reason,
        ReasonCode::NOT_AUTHORIZED => reason,
        _ => ReasonCode::SERVER_UNAVAILABLE,
    }
}
