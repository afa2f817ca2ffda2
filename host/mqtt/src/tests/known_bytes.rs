//! Known bytes, mostly from the spec's non-normative examples, one line each:
//! the round trips prove encode and decode agree with each other, these
//! prove they agree with the spec (and with every other MQTT implementation).

use super::{check, encode_to_vec, hex};
use crate::Version::{V3_1_1, V5};
use crate::*;

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// The spec's CONNECT example (3.1.1 §3.1.2.10, v5 §3.1.2.12): user name,
/// password, will at QoS 1, clean session, keep alive 10 (flags 0xCE).
fn connect(version: Version, properties: ConnectProperties) -> Packet {
    Packet::Connect(Connect {
        version,
        client_id: "c1".into(),
        clean_start: true,
        keep_alive_s: 10,
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        will: Some(Will {
            topic: "w/t".into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: WillProperties::default(),
        }),
        properties,
    })
}

#[test]
fn connect_v3() {
    check(
        V3_1_1,
        connect(V3_1_1, Default::default()),
        "10 1e 00 04 4d 51 54 54 04 ce 00 0a 00 02 63 31 00 03 77 2f 74 00 03 62 79 65 00 01 75 00 01 70",
    );
}

#[test]
fn connect_v5_with_session_expiry_10() {
    let properties = ConnectProperties {
        session_expiry_interval_s: Some(10),
        ..Default::default()
    };
    check(
        V5,
        connect(V5, properties),
        "10 25 00 04 4d 51 54 54 05 ce 00 0a 05 11 00 00 00 0a 00 02 63 31 00 00 03 77 2f 74 00 03 62 79 65 00 01 75 00 01 70",
    );
}

#[test]
fn connect_minimal() {
    let packet = |version| {
        Packet::Connect(Connect {
            version,
            client_id: String::new(),
            clean_start: true,
            keep_alive_s: 60,
            username: None,
            password: None,
            will: None,
            properties: Default::default(),
        })
    };
    check(
        V3_1_1,
        packet(V3_1_1),
        "10 0c 00 04 4d 51 54 54 04 02 00 3c 00 00",
    );
    check(
        V5,
        packet(V5),
        "10 0d 00 04 4d 51 54 54 05 02 00 3c 00 00 00",
    );
}

fn publish_a_b(properties: PublishProperties) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "a/b".into(),
        packet_id: Some(id(10)),
        payload: Bytes::from_static(b"hi"),
        properties,
    })
}

/// The spec's PUBLISH variable header example: topic "a/b", packet id 10.
#[test]
fn publish_qos1_v3() {
    check(
        V3_1_1,
        publish_a_b(Default::default()),
        "32 09 00 03 61 2f 62 00 0a 68 69",
    );
}

#[test]
fn publish_qos1_v5_with_properties() {
    let properties = PublishProperties {
        payload_format_indicator: Some(true),
        message_expiry_interval_s: Some(60),
        topic_alias: Some(5),
        user_properties: vec![("k".into(), "v".into())],
        ..Default::default()
    };
    check(
        V5,
        publish_a_b(properties),
        "32 1b 00 03 61 2f 62 00 0a 11 01 01 02 00 00 00 3c 23 00 05 26 00 01 6b 00 01 76 68 69",
    );
}

#[test]
fn publish_qos0_retained_dup_free() {
    let packet = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: true,
        topic: "t".into(),
        packet_id: None,
        payload: Bytes::new(),
        properties: Default::default(),
    });
    check(V3_1_1, packet.clone(), "31 03 00 01 74");
    check(V5, packet, "31 04 00 01 74 00");
}

fn connack(reason: ReasonCode, session_present: bool) -> Packet {
    Packet::ConnAck(ConnAck {
        session_present,
        reason,
        properties: Default::default(),
    })
}

#[test]
fn connack_v3() {
    check(V3_1_1, connack(ReasonCode::SUCCESS, true), "20 02 01 00");
    check(
        V3_1_1,
        connack(ReasonCode::NOT_AUTHORIZED, false),
        "20 02 00 05",
    );
}

#[test]
fn connack_v5() {
    check(V5, connack(ReasonCode::SUCCESS, false), "20 03 00 00 00");
    check(
        V5,
        connack(ReasonCode::QUOTA_EXCEEDED, false),
        "20 03 00 97 00",
    );
}

/// The spec's SUBACK payload example (3.1.1 §3.9.3): granted QoS 0,
/// granted QoS 2, failure.
#[test]
fn suback_v3() {
    let reasons = vec![
        ReasonCode::GRANTED_QOS_0,
        ReasonCode::GRANTED_QOS_2,
        ReasonCode::UNSPECIFIED_ERROR,
    ];
    check(
        V3_1_1,
        Packet::SubAck(SubAck {
            packet_id: id(10),
            reasons,
            properties: Default::default(),
        }),
        "90 05 00 0a 00 02 80",
    );
}

#[test]
fn suback_v5() {
    let reasons = vec![
        ReasonCode::GRANTED_QOS_0,
        ReasonCode::GRANTED_QOS_2,
        ReasonCode::NOT_AUTHORIZED,
    ];
    check(
        V5,
        Packet::SubAck(SubAck {
            packet_id: id(10),
            reasons,
            properties: Default::default(),
        }),
        "90 06 00 0a 00 00 02 87",
    );
}

/// Every v5 failure becomes 3.1.1's one failure code (encode only: it
/// decodes back as Unspecified error).
#[test]
fn suback_v5_failure_to_v3() {
    let packet = Packet::SubAck(SubAck {
        packet_id: id(1),
        reasons: vec![ReasonCode::QUOTA_EXCEEDED],
        properties: Default::default(),
    });
    assert_eq!(
        hex(&encode_to_vec(&packet, V3_1_1).unwrap()),
        "90 03 00 01 80"
    );
}

#[test]
fn subscribe() {
    let sub = Subscription::new("a/b", QoS::AtLeastOnce);
    let packet = Packet::Subscribe(Subscribe {
        packet_id: id(10),
        subscriptions: vec![sub.clone()],
        properties: Default::default(),
    });
    check(V3_1_1, packet, "82 08 00 0a 00 03 61 2f 62 01");
    let sub = Subscription {
        no_local: true,
        retain_as_published: true,
        retain_handling: RetainHandling::DoNotSend,
        ..sub
    };
    let properties = SubscribeProperties {
        subscription_identifier: Some(1),
        ..Default::default()
    };
    check(
        V5,
        Packet::Subscribe(Subscribe {
            packet_id: id(10),
            subscriptions: vec![sub],
            properties,
        }),
        "82 0b 00 0a 02 0b 01 00 03 61 2f 62 2d",
    );
}

#[test]
fn unsubscribe_and_unsuback() {
    let packet = Packet::Unsubscribe(Unsubscribe {
        packet_id: id(2),
        filters: vec!["a/#".into()],
        properties: Default::default(),
    });
    check(V3_1_1, packet.clone(), "a2 07 00 02 00 03 61 2f 23");
    check(V5, packet, "a2 08 00 02 00 00 03 61 2f 23");
    check(
        V3_1_1,
        Packet::UnsubAck(UnsubAck {
            packet_id: id(2),
            reasons: vec![],
            properties: Default::default(),
        }),
        "b0 02 00 02",
    );
    check(
        V5,
        Packet::UnsubAck(UnsubAck {
            packet_id: id(2),
            reasons: vec![ReasonCode::NO_SUBSCRIPTION_EXISTED],
            properties: Default::default(),
        }),
        "b0 04 00 02 00 11",
    );
}

/// v5 acks shrink to the 3.1.1 shape when they say nothing more (§3.4.2.1).
#[test]
fn pub_acks() {
    check(V3_1_1, Packet::PubAck(PubAck::new(id(10))), "40 02 00 0a");
    check(V5, Packet::PubAck(PubAck::new(id(10))), "40 02 00 0a");
    check(
        V5,
        Packet::PubRec(PubAck {
            reason: ReasonCode::NO_MATCHING_SUBSCRIBERS,
            ..PubAck::new(id(10))
        }),
        "50 03 00 0a 10",
    );
    check(V5, Packet::PubRel(PubAck::new(id(10))), "62 02 00 0a");
    let properties = AckProperties {
        reason_string: Some("x".into()),
        ..Default::default()
    };
    check(
        V5,
        Packet::PubComp(PubAck {
            properties,
            ..PubAck::new(id(10))
        }),
        "70 08 00 0a 00 04 1f 00 01 78",
    );
}

#[test]
fn pings_disconnect_auth() {
    check(V3_1_1, Packet::PingReq, "c0 00");
    check(V5, Packet::PingResp, "d0 00");
    check(V3_1_1, Packet::Disconnect(Disconnect::default()), "e0 00");
    check(V5, Packet::Disconnect(Disconnect::default()), "e0 00");
    check(
        V5,
        Packet::Disconnect(Disconnect {
            reason: ReasonCode::SESSION_TAKEN_OVER,
            properties: Default::default(),
        }),
        "e0 01 8e",
    );
    let properties = AuthProperties {
        authentication_method: Some("m".into()),
        ..Default::default()
    };
    check(
        V5,
        Packet::Auth(Auth {
            reason: ReasonCode::CONTINUE_AUTHENTICATION,
            properties,
        }),
        "f0 06 18 04 15 00 01 6d",
    );
}

/// The codec accepts a v5 ack written in full even though it writes the
/// short form itself.
#[test]
fn long_forms_decode_to_the_same_packet() {
    let mut buf = super::unhex("40 04 00 0a 00 00");
    assert_eq!(
        decode(&mut buf, V5, PACKET_BYTES_MAX),
        Ok(Some(Packet::PubAck(PubAck::new(id(10)))))
    );
    let mut buf = super::unhex("e0 02 00 00");
    assert_eq!(
        decode(&mut buf, V5, PACKET_BYTES_MAX),
        Ok(Some(Packet::Disconnect(Disconnect::default())))
    );
}

#[test]
fn reason_code_names() {
    assert_eq!(
        format!("{:?}", ReasonCode::PACKET_TOO_LARGE),
        "0x95 Packet too large"
    );
    assert_eq!(ReasonCode::try_from(0x03), Err(0x03));
    assert_eq!(u8::from(ReasonCode::try_from(0xA2).unwrap()), 0xA2);
    assert_eq!(ReasonCode::NORMAL_DISCONNECTION, ReasonCode::GRANTED_QOS_0);
    assert_eq!((0..=255).filter_map(ReasonCode::new).count(), 43);
}
