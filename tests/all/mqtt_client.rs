//! A small blocking MQTT client for the tests, built on Sluice's own codec
//! (whose encoding is property-tested against its decoder and checked against
//! the spec's example bytes). It lets tests do what command-line clients
//! cannot: hold a session open, drop the socket without DISCONNECT, set v5
//! properties, and look at every packet the broker sends.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sluice_mqtt::{
    Bytes, BytesMut, ConnAck, Connect, ConnectProperties, Packet, PacketId, PubAck, Publish,
    PublishProperties, QoS, ReasonCode, Subscribe, SubscribeProperties, Subscription, Version,
    Will, decode, encode,
};

pub struct Client {
    pub stream: TcpStream,
    pub version: Version,
    inbox: BytesMut,
    next_id: u16,
}

pub fn connect_packet(version: Version, client_id: &str) -> Connect {
    Connect {
        version,
        client_id: client_id.into(),
        clean_start: true,
        keep_alive_s: 30,
        username: None,
        password: None,
        will: None,
        properties: ConnectProperties::default(),
    }
}

impl Client {
    /// Connects and completes CONNECT/CONNACK; returns the CONNACK too.
    pub fn connect(addr: SocketAddr, connect: Connect) -> (Client, ConnAck) {
        let stream = TcpStream::connect(addr).expect("connect to the broker");
        Self::handshake(stream, connect)
    }

    /// Like [`Client::connect`], with the socket's receive buffer set to
    /// `bytes` before connecting, so the kernel holds little for a client
    /// that reads slowly or not at all (the broker has to).
    pub fn connect_with_receive_buffer(
        addr: SocketAddr,
        connect: Connect,
        bytes: usize,
    ) -> (Client, ConnAck) {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .unwrap();
        socket.set_recv_buffer_size(bytes).unwrap();
        socket.connect(&addr.into()).expect("connect to the broker");
        Self::handshake(socket.into(), connect)
    }

    fn handshake(stream: TcpStream, connect: Connect) -> (Client, ConnAck) {
        stream.set_nodelay(true).unwrap();
        let mut c = Client {
            stream,
            version: connect.version,
            inbox: BytesMut::new(),
            next_id: 0,
        };
        c.send(&Packet::Connect(connect));
        match c.recv() {
            Some(Packet::ConnAck(a)) => (c, a),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub fn simple(addr: SocketAddr, version: Version, client_id: &str) -> Client {
        let (c, ack) = Client::connect(addr, connect_packet(version, client_id));
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        c
    }

    pub fn send(&mut self, p: &Packet) {
        let mut out = BytesMut::new();
        encode(p, self.version, sluice_mqtt::PACKET_BYTES_MAX, &mut out).expect("encode");
        self.stream.write_all(&out).expect("write to the broker");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the broker");
    }

    /// The next packet, or `None` if the broker closed the connection or
    /// nothing came within 5 s.
    pub fn recv(&mut self) -> Option<Packet> {
        self.recv_within(Duration::from_secs(5))
    }

    pub fn recv_within(&mut self, wait: Duration) -> Option<Packet> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(p) = decode(&mut self.inbox, self.version, sluice_mqtt::PACKET_BYTES_MAX)
                .expect("broker sent a valid packet")
            {
                return Some(p);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut buf = [0u8; 8192];
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.inbox.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(_) => return None,
            }
        }
    }

    fn id(&mut self) -> PacketId {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        PacketId::new(self.next_id).unwrap()
    }

    pub fn subscribe_with(
        &mut self,
        subs: Vec<Subscription>,
        properties: SubscribeProperties,
    ) -> Vec<ReasonCode> {
        let packet_id = self.id();
        self.send(&Packet::Subscribe(Subscribe {
            packet_id,
            subscriptions: subs,
            properties,
        }));
        loop {
            match self.recv() {
                Some(Packet::SubAck(a)) => return a.reasons,
                Some(Packet::Publish(_)) => continue, // retained messages may race the SUBACK in tests that ignore them
                other => panic!("expected SUBACK, got {other:?}"),
            }
        }
    }

    pub fn subscribe(&mut self, filter: &str, qos: QoS) -> Vec<ReasonCode> {
        self.subscribe_with(
            vec![Subscription::new(filter, qos)],
            SubscribeProperties::default(),
        )
    }

    /// Unsubscribes from one filter; the UNSUBACK's reasons (none in 3.1.1).
    pub fn unsubscribe(&mut self, filter: &str) -> Vec<ReasonCode> {
        let packet_id = self.id();
        self.send(&Packet::Unsubscribe(sluice_mqtt::Unsubscribe {
            packet_id,
            filters: vec![filter.to_owned()],
            properties: Default::default(),
        }));
        loop {
            match self.recv() {
                Some(Packet::UnsubAck(a)) => return a.reasons,
                Some(Packet::Publish(_)) => continue,
                other => panic!("expected UNSUBACK, got {other:?}"),
            }
        }
    }

    /// Publishes and, for QoS 1/2, completes the handshake; returns the broker's reason.
    pub fn publish_with(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        properties: PublishProperties,
    ) -> ReasonCode {
        let packet_id = (qos != QoS::AtMostOnce).then(|| self.id());
        self.send(&Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: topic.into(),
            packet_id,
            payload: Bytes::copy_from_slice(payload),
            properties,
        }));
        match qos {
            QoS::AtMostOnce => ReasonCode::SUCCESS,
            QoS::AtLeastOnce => match self.recv_skipping_publishes() {
                Some(Packet::PubAck(a)) => a.reason,
                other => panic!("expected PUBACK, got {other:?}"),
            },
            QoS::ExactlyOnce => {
                let reason = match self.recv_skipping_publishes() {
                    Some(Packet::PubRec(a)) => a.reason,
                    other => panic!("expected PUBREC, got {other:?}"),
                };
                self.send(&Packet::PubRel(PubAck::new(packet_id.unwrap())));
                match self.recv_skipping_publishes() {
                    Some(Packet::PubComp(_)) => reason,
                    other => panic!("expected PUBCOMP, got {other:?}"),
                }
            }
        }
    }

    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS) -> ReasonCode {
        self.publish_with(topic, payload, qos, false, PublishProperties::default())
    }

    fn recv_skipping_publishes(&mut self) -> Option<Packet> {
        loop {
            match self.recv() {
                Some(Packet::Publish(_)) => continue,
                other => return other,
            }
        }
    }

    /// The next PUBLISH, acknowledged as the protocol wants (QoS 2 fully).
    pub fn expect_publish(&mut self) -> Publish {
        match self.recv() {
            Some(Packet::Publish(p)) => {
                self.ack(&p);
                p
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    pub fn ack(&mut self, p: &Publish) {
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::PubAck(PubAck::new(p.packet_id.unwrap()))),
            QoS::ExactlyOnce => {
                self.send(&Packet::PubRec(PubAck::new(p.packet_id.unwrap())));
                match self.recv() {
                    Some(Packet::PubRel(r)) => {
                        self.send(&Packet::PubComp(PubAck::new(r.packet_id)))
                    }
                    other => panic!("expected PUBREL, got {other:?}"),
                }
            }
        }
    }

    /// Asserts nothing arrives for `wait`.
    pub fn expect_silence(&mut self, wait: Duration) {
        if let Some(p) = self.recv_within(wait) {
            panic!("expected nothing, got {p:?}");
        }
    }
}

pub fn will(topic: &str, payload: &'static [u8]) -> Will {
    Will {
        topic: topic.into(),
        payload: Bytes::from_static(payload),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    }
}
