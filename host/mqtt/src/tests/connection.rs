//! The connection state machine driven in virtual time with no sockets: a
//! test client encodes packets into the connection and decodes what comes
//! back, like quinn-proto's `Pair::drive`.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use crate::connection::*;
use crate::{
    Connect, ConnectProperties, Disconnect, Packet, PacketId, PubAck, Publish, PublishProperties,
    QoS, ReasonCode, Subscribe, Subscription, Version, decode, encode,
};

struct Pair {
    conn: Connection,
    now: Instant,
    inbox: BytesMut,
    version: Version,
    connect: Option<Connect>,
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn connect_packet(
    version: Version,
    client_id: &str,
    keep_alive_s: u16,
    properties: ConnectProperties,
) -> Connect {
    Connect {
        version,
        client_id: client_id.into(),
        clean_start: true,
        keep_alive_s,
        username: None,
        password: None,
        will: None,
        properties,
    }
}

impl Pair {
    fn new(config: ConnectionConfig) -> Self {
        let now = Instant::now();
        Pair {
            conn: Connection::new(config, now),
            now,
            inbox: BytesMut::new(),
            version: Version::V5,
            connect: None,
        }
    }

    /// A connection through CONNECT and CONNACK, with the default config.
    fn open(version: Version, properties: ConnectProperties) -> Self {
        Pair::open_with(ConnectionConfig::default(), version, properties)
    }

    /// A connection through CONNECT and CONNACK.
    fn open_with(
        config: ConnectionConfig,
        version: Version,
        properties: ConnectProperties,
    ) -> Self {
        let mut p = Pair::new(config);
        p.version = version;
        p.send(Packet::Connect(connect_packet(
            version, "c1", 10, properties,
        )));
        let Some(Event::Connect(c)) = p.conn.poll_event() else {
            panic!("no connect event")
        };
        p.connect = Some(*c.clone());
        p.conn.accept(p.now, Accept::default(), &c);
        let out = p.recv();
        assert!(
            matches!(out[..], [Packet::ConnAck(ref a)] if a.reason == ReasonCode::SUCCESS),
            "{out:?}"
        );
        p
    }

    fn send(&mut self, packet: Packet) {
        encode(
            &packet,
            self.version,
            crate::PACKET_BYTES_MAX,
            &mut self.inbox,
        )
        .unwrap();
        self.conn.handle_input(self.now, &mut self.inbox);
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.inbox.extend_from_slice(bytes);
        self.conn.handle_input(self.now, &mut self.inbox);
    }

    fn recv(&mut self) -> Vec<Packet> {
        let mut out = BytesMut::new();
        self.conn.poll_transmit(self.now, &mut out);
        let mut packets = Vec::new();
        while let Some(p) = decode(&mut out, self.version, crate::PACKET_BYTES_MAX).unwrap() {
            packets.push(p);
        }
        packets
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.conn.handle_timeout(self.now);
    }
}

fn publish(qos: QoS, packet_id: Option<u16>, topic: &str, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: packet_id.map(id),
        payload: Bytes::from_static(payload),
        properties: PublishProperties::default(),
    })
}

fn delivery(qos: QoS, topic: &str) -> Delivery {
    Delivery {
        topic: topic.into(),
        payload: Bytes::from_static(b"x"),
        qos,
        retain: false,
        properties: PublishProperties::default(),
        expires_at: None,
        store_id: None,
        maybe_sent: false,
    }
}

#[test]
fn connack_announces_the_servers_limits() {
    let mut p = Pair::new(ConnectionConfig {
        receive_maximum: 7,
        topic_alias_maximum: 3,
        ..Default::default()
    });
    p.send(Packet::Connect(connect_packet(
        Version::V5,
        "",
        0,
        ConnectProperties::default(),
    )));
    let Some(Event::Connect(c)) = p.conn.poll_event() else {
        panic!()
    };
    p.conn.accept(
        p.now,
        Accept {
            assigned_client_id: Some("auto-1".into()),
            ..Default::default()
        },
        &c,
    );
    let [Packet::ConnAck(a)] = &p.recv()[..] else {
        panic!()
    };
    assert_eq!(a.properties.receive_maximum, Some(7));
    assert_eq!(a.properties.topic_alias_maximum, Some(3));
    assert_eq!(
        a.properties.assigned_client_identifier.as_deref(),
        Some("auto-1")
    );
    // keep-alive 0 asked: the server imposes its own and says so.
    assert_eq!(a.properties.server_keep_alive_s, Some(3600));
}

#[test]
fn v3_persistent_session_without_client_id_is_refused() {
    let mut p = Pair::new(ConnectionConfig::default());
    p.version = Version::V3_1_1;
    let mut c = connect_packet(Version::V3_1_1, "", 10, ConnectProperties::default());
    c.clean_start = false;
    p.send(Packet::Connect(c));
    let [Packet::ConnAck(a)] = &p.recv()[..] else {
        panic!()
    };
    assert_eq!(a.reason, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    assert!(p.conn.is_closed());
}

#[test]
fn the_first_packet_must_be_connect() {
    let mut p = Pair::new(ConnectionConfig::default());
    p.send(Packet::PingReq);
    assert!(p.conn.is_closed());
    assert!(matches!(
        p.events()[..],
        [Event::Closed(CloseReason::ProtocolError { .. })]
    ));
}

#[test]
fn packets_pipelined_before_connack_are_handled_after_accept() {
    let mut p = Pair::new(ConnectionConfig::default());
    p.send(Packet::Connect(connect_packet(
        Version::V5,
        "c",
        10,
        ConnectProperties::default(),
    )));
    p.send(publish(QoS::AtMostOnce, None, "a/b", b"early"));
    let events = p.events();
    assert_eq!(
        events.len(),
        1,
        "nothing after CONNECT is decoded before the broker answers"
    );
    let Event::Connect(c) = &events[0] else {
        panic!()
    };
    p.conn.accept(p.now, Accept::default(), c);
    p.conn.handle_input(p.now, &mut p.inbox);
    assert!(matches!(&p.events()[..], [Event::Publish(pb)] if pb.payload == "early"));
}

#[test]
fn qos1_is_acknowledged_only_when_the_broker_says_so() {
    let mut p = Pair::open(Version::V5, ConnectProperties::default());
    p.send(publish(QoS::AtLeastOnce, Some(5), "a/b", b"m"));
    assert!(matches!(&p.events()[..], [Event::Publish(pb)] if pb.topic == "a/b"));
    assert!(
        p.recv().is_empty(),
        "no PUBACK before the message is durable"
    );
    p.conn
        .publish_done(id(5), QoS::AtLeastOnce, ReasonCode::NO_MATCHING_SUBSCRIBERS);
    assert!(
        matches!(&p.recv()[..], [Packet::PubAck(a)] if a.packet_id.get() == 5 && a.reason == ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
}

#[test]
fn qos2_is_delivered_exactly_once_even_when_resent() {
    let mut p = Pair::open(Version::V5, ConnectProperties::default());
    p.send(publish(QoS::ExactlyOnce, Some(9), "a/b", b"once"));
    assert_eq!(p.events().len(), 1);
    p.conn
        .publish_done(id(9), QoS::ExactlyOnce, ReasonCode::SUCCESS);
    assert!(matches!(&p.recv()[..], [Packet::PubRec(a)] if a.packet_id.get() == 9));
    // The client did not see PUBREC and resends with DUP: PUBREC again, no second event.
    p.send(publish(QoS::ExactlyOnce, Some(9), "a/b", b"once"));
    assert!(p.events().is_empty());
    assert!(matches!(&p.recv()[..], [Packet::PubRec(_)]));
    p.send(Packet::PubRel(PubAck::new(id(9))));
    assert!(matches!(&p.events()[..], [Event::Released { packet_id }] if packet_id.get() == 9));
    assert!(
        p.recv().is_empty(),
        "no PUBCOMP before the broker has forgotten the id"
    );
    p.conn.release_done(id(9));
    assert!(matches!(&p.recv()[..], [Packet::PubComp(a)] if a.reason == ReasonCode::SUCCESS));
    // A PUBREL for an id we do not hold is answered at once, with 0x92 in v5.
    p.send(Packet::PubRel(PubAck::new(id(11))));
    assert!(p.events().is_empty());
    assert!(
        matches!(&p.recv()[..], [Packet::PubComp(a)] if a.reason == ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
    );
    // After PUBREL the id is free again: a new publish with it is new.
    p.send(publish(QoS::ExactlyOnce, Some(9), "a/b", b"again"));
    assert_eq!(p.events().len(), 1);
}

#[test]
fn exceeding_the_receive_maximum_disconnects_with_0x93() {
    let mut p = Pair::open_with(
        ConnectionConfig {
            receive_maximum: 2,
            ..Default::default()
        },
        Version::V5,
        ConnectProperties::default(),
    );
    for n in 1..=3 {
        p.send(publish(QoS::AtLeastOnce, Some(n), "a", b"x"));
    }
    assert!(
        matches!(&p.recv()[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
    );
    assert!(p.conn.is_closed());
}

#[test]
fn outgoing_qos1_respects_the_clients_receive_window() {
    let props = ConnectProperties {
        receive_maximum: Some(2),
        ..Default::default()
    };
    let mut p = Pair::open(Version::V5, props);
    for _ in 0..5 {
        p.conn.deliver(delivery(QoS::AtLeastOnce, "t")).unwrap();
    }
    let sent = p.recv();
    assert_eq!(sent.len(), 2, "window of 2");
    let Packet::Publish(first) = &sent[0] else {
        panic!()
    };
    p.send(Packet::PubAck(PubAck::new(first.packet_id.unwrap())));
    assert!(matches!(&p.events()[..], [Event::Delivered { .. }]));
    assert_eq!(p.recv().len(), 1, "one slot freed, one more sent");
}

#[test]
fn the_servers_inflight_cap_bounds_a_client_that_names_no_window() {
    let config = ConnectionConfig {
        inflight_messages_max: 3,
        ..Default::default()
    };
    // 3.1.1 has no Receive Maximum: the server's cap is the window.
    let mut p = Pair::open_with(
        config.clone(),
        Version::V3_1_1,
        ConnectProperties::default(),
    );
    for _ in 0..10 {
        p.conn.deliver(delivery(QoS::AtLeastOnce, "t")).unwrap();
    }
    assert_eq!(p.recv().len(), 3);
    // A smaller window from the client wins.
    let props = ConnectProperties {
        receive_maximum: Some(2),
        ..Default::default()
    };
    let mut p = Pair::open_with(config, Version::V5, props);
    for _ in 0..10 {
        p.conn.deliver(delivery(QoS::AtLeastOnce, "t")).unwrap();
    }
    assert_eq!(p.recv().len(), 2);
}

#[test]
fn idle_buffers_are_released_only_when_nothing_is_queued() {
    let props = ConnectProperties {
        receive_maximum: Some(1),
        ..Default::default()
    };
    let mut p = Pair::open(Version::V5, props);
    assert!(
        p.conn.release_idle_buffers(),
        "nothing queued after CONNACK"
    );
    p.conn.deliver(delivery(QoS::AtLeastOnce, "t")).unwrap();
    p.conn.deliver(delivery(QoS::AtLeastOnce, "t")).unwrap();
    assert!(
        !p.conn.release_idle_buffers(),
        "a message waits: keep its room"
    );
    let sent = p.recv();
    let [Packet::Publish(first)] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert!(!p.conn.release_idle_buffers(), "one in flight, one pending");
    p.send(Packet::PubAck(PubAck::new(first.packet_id.unwrap())));
    p.events();
    let [Packet::Publish(second)] = &p.recv()[..] else {
        panic!()
    };
    p.send(Packet::PubAck(PubAck::new(second.packet_id.unwrap())));
    p.events();
    assert!(p.conn.release_idle_buffers());
    // Still a working connection afterwards.
    p.conn.deliver(delivery(QoS::AtMostOnce, "t")).unwrap();
    assert_eq!(p.recv().len(), 1);
}

#[test]
fn outgoing_qos2_runs_the_full_handshake() {
    let mut p = Pair::open(Version::V5, ConnectProperties::default());
    p.conn.deliver(delivery(QoS::ExactlyOnce, "t")).unwrap();
    let [Packet::Publish(pb)] = &p.recv()[..] else {
        panic!()
    };
    let pid = pb.packet_id.unwrap();
    p.send(Packet::PubRec(PubAck::new(pid)));
    assert!(matches!(&p.recv()[..], [Packet::PubRel(a)] if a.packet_id == pid));
    p.send(Packet::PubComp(PubAck::new(pid)));
    assert!(
        matches!(&p.events()[..], [Event::Delivered { packet_id, .. }] if *packet_id == pid.get())
    );
}

#[test]
fn keep_alive_timeout_after_one_and_a_half_intervals() {
    let mut p = Pair::open(Version::V5, ConnectProperties::default());
    p.advance(Duration::from_secs(14));
    assert!(!p.conn.is_closed(), "10 s keep-alive allows 15 s");
    p.send(Packet::PingReq);
    assert!(matches!(&p.recv()[..], [Packet::PingResp]));
    p.advance(Duration::from_secs(14));
    assert!(!p.conn.is_closed(), "any packet restarts the clock");
    p.advance(Duration::from_secs(2));
    assert!(
        matches!(&p.recv()[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
    assert!(matches!(
        &p.events()[..],
        [Event::Closed(CloseReason::KeepAliveTimeout)]
    ));
    assert!(CloseReason::KeepAliveTimeout.publishes_will());
}

#[test]
fn the_will_follows_the_disconnect_reason() {
    let mut p = Pair::open(Version::V5, ConnectProperties::default());
    p.send(Packet::Disconnect(Disconnect::default()));
    let [Event::Closed(r)] = &p.events()[..] else {
        panic!()
    };
    assert!(!r.publishes_will(), "a clean DISCONNECT discards the will");
    let mut p = Pair::open(Version::V5, ConnectProperties::default());
    p.send(Packet::Disconnect(Disconnect {
        reason: ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
        ..Default::default()
    }));
    let [Event::Closed(r)] = &p.events()[..] else {
        panic!()
    };
    assert!(r.publishes_will());
    assert!(CloseReason::TransportClosed.publishes_will());
}

#[test]
fn a_resumed_session_resends_unacknowledged_messages_with_dup() {
    let props = ConnectProperties {
        session_expiry_interval_s: Some(600),
        ..Default::default()
    };
    let mut p = Pair::open(Version::V5, props.clone());
    p.conn.deliver(delivery(QoS::AtLeastOnce, "t/1")).unwrap();
    p.conn.deliver(delivery(QoS::ExactlyOnce, "t/2")).unwrap();
    assert_eq!(p.recv().len(), 2);
    p.conn.handle_transport_closed();
    let session = p.conn.take_session();
    assert_eq!(session.queued(), 2);

    let mut q = Pair::new(ConnectionConfig::default());
    q.send(Packet::Connect(connect_packet(
        Version::V5,
        "c1",
        10,
        props,
    )));
    let Some(Event::Connect(c)) = q.conn.poll_event() else {
        panic!()
    };
    q.conn.accept(
        q.now,
        Accept {
            session_present: true,
            session,
            ..Default::default()
        },
        &c,
    );
    let out = q.recv();
    assert!(matches!(&out[0], Packet::ConnAck(a) if a.session_present));
    let resent: Vec<&Publish> = out[1..]
        .iter()
        .map(|p| match p {
            Packet::Publish(pb) => pb,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(resent.len(), 2);
    assert!(resent.iter().all(|pb| pb.dup), "redelivery carries DUP");
}

#[test]
fn inbound_topic_aliases_are_resolved_and_checked() {
    let mut p = Pair::open(Version::V5, ConnectProperties::default());
    let mut first = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "long/topic/name".into(),
        packet_id: None,
        payload: Bytes::from_static(b"1"),
        properties: PublishProperties {
            topic_alias: Some(3),
            ..Default::default()
        },
    };
    p.send(Packet::Publish(first.clone()));
    first.topic.clear();
    p.send(Packet::Publish(first.clone()));
    let topics: Vec<String> = p
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Publish(pb) => pb.topic,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(topics, ["long/topic/name", "long/topic/name"]);
    first.properties.topic_alias = Some(9999);
    p.send(Packet::Publish(first));
    assert!(
        matches!(&p.recv()[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::TOPIC_ALIAS_INVALID)
    );
}

#[test]
fn outbound_topic_aliases_shorten_repeated_topics() {
    let props = ConnectProperties {
        topic_alias_maximum: Some(4),
        ..Default::default()
    };
    let mut p = Pair::open(Version::V5, props);
    p.conn
        .deliver(delivery(QoS::AtMostOnce, "very/long/topic"))
        .unwrap();
    p.conn
        .deliver(delivery(QoS::AtMostOnce, "very/long/topic"))
        .unwrap();
    let out = p.recv();
    let [Packet::Publish(a), Packet::Publish(b)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (a.topic.as_str(), a.properties.topic_alias),
        ("very/long/topic", Some(1))
    );
    assert_eq!((b.topic.as_str(), b.properties.topic_alias), ("", Some(1)));
}

#[test]
fn a_slow_client_loses_the_oldest_qos0_messages_and_they_are_counted() {
    let mut p = Pair::open_with(
        ConnectionConfig {
            qos0_queue_messages_max: 3,
            transmit_bytes_max: 1,
            ..Default::default()
        },
        Version::V5,
        ConnectProperties::default(),
    );
    // The CONNACK fills the tiny transmit buffer until it is taken.
    for n in 0..10u8 {
        let mut d = delivery(QoS::AtMostOnce, "t");
        d.payload = Bytes::from(vec![n]);
        p.conn.deliver(d).unwrap();
    }
    assert_eq!(p.conn.stats().qos0_dropped, 7);
    let payloads: Vec<u8> = std::iter::from_fn(|| {
        let out = p.recv();
        (!out.is_empty()).then_some(out)
    })
    .flatten()
    .filter_map(|pk| match pk {
        Packet::Publish(pb) => Some(pb.payload[0]),
        _ => None,
    })
    .collect();
    assert_eq!(payloads, [7, 8, 9], "the newest survive");
}

#[test]
fn expired_messages_are_dropped_and_the_rest_carry_their_remaining_interval() {
    let mut p = Pair::open(Version::V5, ConnectProperties::default());
    let mut gone = delivery(QoS::AtLeastOnce, "t");
    gone.expires_at = Some(p.now - Duration::from_secs(1));
    let mut live = delivery(QoS::AtLeastOnce, "t");
    live.expires_at = Some(p.now + Duration::from_secs(30));
    p.conn.deliver(gone).unwrap();
    p.conn.deliver(live).unwrap();
    let [Packet::Publish(pb)] = &p.recv()[..] else {
        panic!()
    };
    assert_eq!(pb.properties.message_expiry_interval_s, Some(30));
    assert_eq!(p.conn.stats().expired_dropped, 1);
}

#[test]
fn enhanced_authentication_is_declined_cleanly() {
    let mut p = Pair::new(ConnectionConfig::default());
    let props = ConnectProperties {
        authentication_method: Some("SCRAM-SHA-1".into()),
        ..Default::default()
    };
    p.send(Packet::Connect(connect_packet(Version::V5, "c", 10, props)));
    assert!(
        matches!(&p.recv()[..], [Packet::ConnAck(a)] if a.reason == ReasonCode::BAD_AUTHENTICATION_METHOD)
    );
    assert!(p.conn.is_closed());
}

#[test]
fn an_oversized_packet_disconnects_with_0x95() {
    let mut p = Pair::open_with(
        ConnectionConfig {
            packet_bytes_max: 64,
            ..Default::default()
        },
        Version::V5,
        ConnectProperties::default(),
    );
    p.send_raw(&[0x30, 0xff, 0xff, 0x03]);
    assert!(
        matches!(&p.recv()[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::PACKET_TOO_LARGE)
    );
}

#[test]
fn subscribe_is_handed_to_the_broker_and_answered() {
    let mut p = Pair::open(Version::V3_1_1, ConnectProperties::default());
    p.send(Packet::Subscribe(Subscribe {
        packet_id: id(1),
        subscriptions: vec![Subscription::new("a/#", QoS::AtLeastOnce)],
        properties: Default::default(),
    }));
    let [Event::Subscribe(s)] = &p.events()[..] else {
        panic!()
    };
    p.conn.suback(s.packet_id, vec![ReasonCode::GRANTED_QOS_1]);
    assert!(
        matches!(&p.recv()[..], [Packet::SubAck(a)] if a.reasons == [ReasonCode::GRANTED_QOS_1])
    );
}

proptest! {
    /// Whatever bytes arrive, the connection never panics and ends closed or waiting.
    #[test]
    fn arbitrary_input_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut p = Pair::new(ConnectionConfig { packet_bytes_max: 256, ..Default::default() });
        for c in chunks {
            p.send_raw(&c);
            while let Some(e) = p.conn.poll_event() {
                if let Event::Connect(c) = e {
                    p.conn.accept(p.now, Accept::default(), &c);
                    p.conn.handle_input(p.now, &mut p.inbox);
                }
            }
            let mut out = BytesMut::new();
            p.conn.poll_transmit(p.now, &mut out);
        }
    }
}

#[test]
fn an_alias_is_only_remembered_when_its_packet_was_sent() {
    let props = ConnectProperties {
        topic_alias_maximum: Some(4),
        maximum_packet_size: Some(64),
        ..Default::default()
    };
    let mut p = Pair::open(Version::V5, props);
    let mut big = delivery(QoS::AtMostOnce, "t");
    big.payload = Bytes::from(vec![0u8; 200]);
    p.conn.deliver(big).unwrap();
    assert!(p.recv().is_empty(), "too large for the client: dropped");
    p.conn.deliver(delivery(QoS::AtMostOnce, "t")).unwrap();
    let [Packet::Publish(pb)] = &p.recv()[..] else {
        panic!()
    };
    assert_eq!(
        (pb.topic.as_str(), pb.properties.topic_alias),
        ("t", Some(1)),
        "the alias is announced with its topic"
    );
}
