//! Values the encoder must refuse rather than put on the wire: things the
//! format cannot represent, things a peer would reject, and outcomes a
//! 3.1.1 peer could not be told. A refused encode leaves `out` untouched.

use super::encode_to_vec;
use crate::Version::{V3_1_1, V5};
use crate::*;

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn publish(topic: &str, qos: QoS, packet_id: Option<PacketId>) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id,
        payload: Bytes::new(),
        properties: Default::default(),
    })
}

#[test]
fn unrepresentable_values() {
    let long = "x".repeat(STRING_BYTES_MAX + 1);
    assert_eq!(
        encode_to_vec(&publish(&long, QoS::AtMostOnce, None), V5),
        Err(EncodeError::StringTooLong { bytes: 65_536 })
    );
    assert!(encode_to_vec(&publish(&long[1..], QoS::AtMostOnce, None), V5).is_ok());
    assert_eq!(
        encode_to_vec(&publish("a\0b", QoS::AtMostOnce, None), V5),
        Err(EncodeError::NullCharacter)
    );
    assert_eq!(
        encode_to_vec(&publish("t", QoS::AtMostOnce, Some(id(1))), V5),
        Err(EncodeError::PacketIdMismatch {
            qos: QoS::AtMostOnce,
            has_id: true
        })
    );
    assert_eq!(
        encode_to_vec(&publish("t", QoS::ExactlyOnce, None), V5),
        Err(EncodeError::PacketIdMismatch {
            qos: QoS::ExactlyOnce,
            has_id: false
        })
    );
    let mut dup = publish("t", QoS::AtMostOnce, None);
    if let Packet::Publish(p) = &mut dup {
        p.dup = true;
    }
    assert_eq!(encode_to_vec(&dup, V5), Err(EncodeError::DupWithQoS0));
    let empty = Packet::Subscribe(Subscribe {
        packet_id: id(1),
        subscriptions: vec![],
        properties: Default::default(),
    });
    assert_eq!(
        encode_to_vec(&empty, V5),
        Err(EncodeError::EmptyPayload {
            packet: PacketType::Subscribe
        })
    );
}

#[test]
fn invalid_property_values() {
    let mut packet = publish("t", QoS::AtMostOnce, None);
    if let Packet::Publish(p) = &mut packet {
        p.properties.topic_alias = Some(0);
    }
    assert_eq!(
        encode_to_vec(&packet, V5),
        Err(EncodeError::InvalidPropertyValue {
            packet: PacketType::Publish,
            id: 0x23,
            value: 0
        })
    );
    // 3.1.1 has no properties: they are left out, not checked.
    assert!(encode_to_vec(&packet, V3_1_1).is_ok());
    if let Packet::Publish(p) = &mut packet {
        p.properties = PublishProperties {
            subscription_identifiers: vec![REMAINING_LENGTH_MAX as u32 + 1],
            ..Default::default()
        };
    }
    assert_eq!(
        encode_to_vec(&packet, V5),
        Err(EncodeError::InvalidPropertyValue {
            packet: PacketType::Publish,
            id: 0x0b,
            value: 268_435_456
        })
    );
    let properties = ConnAckProperties {
        maximum_qos: Some(QoS::ExactlyOnce),
        ..Default::default()
    };
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::SUCCESS,
        properties,
    });
    assert_eq!(
        encode_to_vec(&connack, V5),
        Err(EncodeError::InvalidPropertyValue {
            packet: PacketType::ConnAck,
            id: 0x24,
            value: 2
        })
    );
    let properties = AuthProperties {
        authentication_data: Some(Bytes::from_static(b"d")),
        ..Default::default()
    };
    assert_eq!(
        encode_to_vec(
            &Packet::Auth(Auth {
                reason: ReasonCode::SUCCESS,
                properties
            }),
            V5
        ),
        Err(EncodeError::AuthDataWithoutMethod {
            packet: PacketType::Auth
        })
    );
}

#[test]
fn outcomes_v3_cannot_express() {
    let nack = Packet::PubAck(PubAck {
        reason: ReasonCode::QUOTA_EXCEEDED,
        ..PubAck::new(id(1))
    });
    assert_eq!(
        encode_to_vec(&nack, V3_1_1),
        Err(EncodeError::ReasonNotAllowed {
            packet: PacketType::PubAck,
            reason: ReasonCode::QUOTA_EXCEEDED,
            version: V3_1_1
        })
    );
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::QUOTA_EXCEEDED,
        properties: Default::default(),
    });
    assert!(matches!(
        encode_to_vec(&connack, V3_1_1),
        Err(EncodeError::ReasonNotAllowed { .. })
    ));
    assert_eq!(
        encode_to_vec(
            &Packet::Auth(Auth {
                reason: ReasonCode::SUCCESS,
                properties: Default::default()
            }),
            V3_1_1
        ),
        Err(EncodeError::NotInVersion {
            packet: PacketType::Auth,
            version: V3_1_1
        })
    );
    // A v5 code in the wrong packet is refused on v5 too.
    let wrong = Packet::PubRel(PubAck {
        reason: ReasonCode::QUOTA_EXCEEDED,
        ..PubAck::new(id(1))
    });
    assert!(matches!(
        encode_to_vec(&wrong, V5),
        Err(EncodeError::ReasonNotAllowed { .. })
    ));
    let connect = Packet::Connect(Connect {
        version: V3_1_1,
        client_id: "c".into(),
        clean_start: true,
        keep_alive_s: 0,
        username: None,
        password: Some(Bytes::from_static(b"p")),
        will: None,
        properties: Default::default(),
    });
    assert_eq!(
        encode_to_vec(&connect, V3_1_1),
        Err(EncodeError::PasswordWithoutUsername)
    );
}

/// The peer's Maximum Packet Size, and MQTT's own ceiling.
#[test]
fn too_large_for_the_peer() {
    let mut packet = publish("t", QoS::AtMostOnce, None);
    if let Packet::Publish(p) = &mut packet {
        p.payload = Bytes::from(vec![0u8; 200]);
    }
    let mut out = BytesMut::from(&b"kept"[..]);
    assert_eq!(
        encode(&packet, V5, 100, &mut out),
        Err(EncodeError::PacketTooLarge {
            bytes: 207,
            max: 100
        })
    );
    assert_eq!(&out[..], b"kept");
    if let Packet::Publish(p) = &mut packet {
        p.payload = Bytes::from(vec![0u8; REMAINING_LENGTH_MAX]);
    }
    assert_eq!(
        encode(&packet, V5, usize::MAX, &mut out),
        Err(EncodeError::PacketTooLarge {
            bytes: REMAINING_LENGTH_MAX + 4 + 5,
            max: PACKET_BYTES_MAX
        })
    );
}
