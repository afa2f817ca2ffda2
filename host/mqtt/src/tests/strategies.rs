//! proptest strategies for every packet, per protocol version: arbitrary
//! values of everything the encoder must accept, so that round trips cover
//! the whole packet space rather than hand-picked examples. For 3.1.1 the
//! v5-only fields stay at their defaults, because 3.1.1 cannot carry them.

use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;

use crate::framing::VARINT_MAX;
use crate::{
    AckProperties, Auth, AuthProperties, Bytes, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, ConnectReturnCode, Disconnect, DisconnectProperties, Packet, PacketId,
    PacketType, PubAck, Publish, PublishProperties, QoS, ReasonCode, RetainHandling, SubAck,
    Subscribe, SubscribeProperties, Subscription, UnsubAck, Unsubscribe, UnsubscribeProperties,
    UserProperties, Version, Will, WillProperties,
};

/// Any string MQTT allows: any Unicode scalar value but U+0000.
pub fn string() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[^\\x00]{0,12}").unwrap()
}

pub fn bytes(len_max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=len_max).prop_map(Bytes::from)
}

fn user_properties() -> impl Strategy<Value = UserProperties> {
    vec((string(), string()), 0..3)
}

pub fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|id| PacketId::new(id).unwrap())
}

pub fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

/// The reason codes v5 allows in `packet`.
pub fn reason(packet: PacketType) -> impl Strategy<Value = ReasonCode> {
    let allowed: Vec<ReasonCode> = (0..=255)
        .filter_map(ReasonCode::new)
        .filter(|r| r.is_allowed_in(packet))
        .collect();
    select(allowed)
}

/// `strategy` on v5, the default on 3.1.1.
fn v5_only<T, S>(version: Version, strategy: S) -> BoxedStrategy<T>
where
    T: Default + Clone + std::fmt::Debug + 'static,
    S: Strategy<Value = T> + 'static,
{
    match version {
        Version::V5 => strategy.boxed(),
        Version::V3_1_1 => Just(T::default()).boxed(),
    }
}

/// Authentication data only ever comes with a method.
fn auth_pair() -> impl Strategy<Value = (Option<String>, Option<Bytes>)> {
    of((string(), of(bytes(16)))).prop_map(|pair| match pair {
        Some((method, data)) => (Some(method), data),
        None => (None, None),
    })
}

fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        of(any::<u32>()),
        of(1..=u16::MAX),
        of(1..=u32::MAX),
        of(any::<u16>()),
        of(any::<bool>()),
        of(any::<bool>()),
        user_properties(),
        auth_pair(),
    )
        .prop_map(|(sei, rm, mps, tam, rri, rpi, user_properties, (am, ad))| {
            ConnectProperties {
                session_expiry_interval_s: sei,
                receive_maximum: rm,
                maximum_packet_size: mps,
                topic_alias_maximum: tam,
                request_response_information: rri,
                request_problem_information: rpi,
                user_properties,
                authentication_method: am,
                authentication_data: ad,
            }
        })
}

fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        of(any::<u32>()),
        of(any::<bool>()),
        of(any::<u32>()),
        of(string()),
        of(string()),
        of(bytes(16)),
        user_properties(),
    )
        .prop_map(
            |(wdi, pfi, mei, ct, rt, cd, user_properties)| WillProperties {
                will_delay_interval_s: wdi,
                payload_format_indicator: pfi,
                message_expiry_interval_s: mei,
                content_type: ct,
                response_topic: rt,
                correlation_data: cd,
                user_properties,
            },
        )
}

fn will(version: Version) -> impl Strategy<Value = Will> {
    (
        string(),
        bytes(32),
        qos(),
        any::<bool>(),
        v5_only(version, will_properties()),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        })
}

pub fn connect(version: Version) -> impl Strategy<Value = Packet> {
    (
        string(),
        any::<bool>(),
        any::<u16>(),
        of(string()),
        of(bytes(16)),
        of(will(version)),
        v5_only(version, connect_properties()),
    )
        .prop_map(
            move |(client_id, clean_start, keep_alive_s, username, password, will, properties)| {
                // 3.1.1 forbids a password without a user name.
                let password = if version == Version::V3_1_1 && username.is_none() {
                    None
                } else {
                    password
                };
                Packet::Connect(Connect {
                    version,
                    client_id,
                    clean_start,
                    keep_alive_s,
                    username,
                    password,
                    will,
                    properties,
                })
            },
        )
}

fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    let first = (
        of(any::<u32>()),
        of(1..=u16::MAX),
        of(select(vec![QoS::AtMostOnce, QoS::AtLeastOnce])),
        of(any::<bool>()),
        of(1..=u32::MAX),
        of(string()),
        of(any::<u16>()),
        of(string()),
    );
    let second = (
        user_properties(),
        of(any::<bool>()),
        of(any::<bool>()),
        of(any::<bool>()),
        of(any::<u16>()),
        of(string()),
        of(string()),
        auth_pair(),
    );
    (first, second).prop_map(
        |((sei, rm, mq, ra, mps, aci, tam, rs), (up, wsa, sia, ssa, ska, ri, sr, (am, ad)))| {
            ConnAckProperties {
                session_expiry_interval_s: sei,
                receive_maximum: rm,
                maximum_qos: mq,
                retain_available: ra,
                maximum_packet_size: mps,
                assigned_client_identifier: aci,
                topic_alias_maximum: tam,
                reason_string: rs,
                user_properties: up,
                wildcard_subscription_available: wsa,
                subscription_identifiers_available: sia,
                shared_subscription_available: ssa,
                server_keep_alive_s: ska,
                response_information: ri,
                server_reference: sr,
                authentication_method: am,
                authentication_data: ad,
            }
        },
    )
}

pub fn connack(version: Version) -> impl Strategy<Value = Packet> {
    let reason = match version {
        Version::V5 => reason(PacketType::ConnAck).boxed(),
        Version::V3_1_1 => (0..=5u8)
            .prop_map(|c| ConnectReturnCode::from_u8(c).unwrap().reason())
            .boxed(),
    };
    (
        any::<bool>(),
        reason,
        v5_only(version, connack_properties()),
    )
        .prop_map(|(session_present, reason, properties)| {
            Packet::ConnAck(ConnAck {
                session_present,
                reason,
                properties,
            })
        })
}

fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        of(any::<bool>()),
        of(any::<u32>()),
        of(1..=u16::MAX),
        of(string()),
        of(bytes(16)),
        user_properties(),
        vec(1..=VARINT_MAX, 0..3),
        of(string()),
    )
        .prop_map(
            |(pfi, mei, ta, rt, cd, user_properties, subscription_identifiers, ct)| {
                PublishProperties {
                    payload_format_indicator: pfi,
                    message_expiry_interval_s: mei,
                    topic_alias: ta,
                    response_topic: rt,
                    correlation_data: cd,
                    user_properties,
                    subscription_identifiers,
                    content_type: ct,
                }
            },
        )
}

pub fn publish(version: Version) -> impl Strategy<Value = Packet> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        string(),
        packet_id(),
        bytes(256),
        v5_only(version, publish_properties()),
    )
        .prop_map(|(qos, dup, retain, topic, id, payload, properties)| {
            let at_most_once = qos == QoS::AtMostOnce;
            Packet::Publish(Publish {
                dup: dup && !at_most_once,
                qos,
                retain,
                topic,
                packet_id: if at_most_once { None } else { Some(id) },
                payload,
                properties,
            })
        })
}

fn ack_properties() -> impl Strategy<Value = AckProperties> {
    (of(string()), user_properties()).prop_map(|(reason_string, user_properties)| AckProperties {
        reason_string,
        user_properties,
    })
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP, by `packet`.
pub fn puback(version: Version, packet: PacketType) -> impl Strategy<Value = Packet> {
    let reason = match version {
        Version::V5 => reason(packet).boxed(),
        Version::V3_1_1 => Just(ReasonCode::SUCCESS).boxed(),
    };
    (packet_id(), reason, v5_only(version, ack_properties())).prop_map(
        move |(packet_id, reason, properties)| {
            let ack = PubAck {
                packet_id,
                reason,
                properties,
            };
            match packet {
                PacketType::PubAck => Packet::PubAck(ack),
                PacketType::PubRec => Packet::PubRec(ack),
                PacketType::PubRel => Packet::PubRel(ack),
                PacketType::PubComp => Packet::PubComp(ack),
                other => unreachable!("{other:?} is not an ack"),
            }
        },
    )
}

fn subscription(version: Version) -> impl Strategy<Value = Subscription> {
    let options = v5_only(
        version,
        (
            any::<bool>(),
            any::<bool>(),
            select(vec![
                RetainHandling::SendAtSubscribe,
                RetainHandling::SendAtSubscribeIfNew,
                RetainHandling::DoNotSend,
            ]),
        ),
    );
    (string(), qos(), options).prop_map(
        |(filter, qos, (no_local, retain_as_published, retain_handling))| Subscription {
            filter,
            qos,
            no_local,
            retain_as_published,
            retain_handling,
        },
    )
}

pub fn subscribe(version: Version) -> impl Strategy<Value = Packet> {
    let properties = (of(1..=VARINT_MAX), user_properties()).prop_map(
        |(subscription_identifier, user_properties)| SubscribeProperties {
            subscription_identifier,
            user_properties,
        },
    );
    (
        packet_id(),
        vec(subscription(version), 1..4),
        v5_only(version, properties),
    )
        .prop_map(|(packet_id, subscriptions, properties)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                subscriptions,
                properties,
            })
        })
}

pub fn suback(version: Version) -> impl Strategy<Value = Packet> {
    let reason = match version {
        Version::V5 => reason(PacketType::SubAck).boxed(),
        // What a 3.1.1 SUBACK decodes to: the three grants and 0x80.
        Version::V3_1_1 => select(vec![
            ReasonCode::GRANTED_QOS_0,
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::GRANTED_QOS_2,
            ReasonCode::UNSPECIFIED_ERROR,
        ])
        .boxed(),
    };
    (
        packet_id(),
        vec(reason, 1..5),
        v5_only(version, ack_properties()),
    )
        .prop_map(|(packet_id, reasons, properties)| {
            Packet::SubAck(SubAck {
                packet_id,
                reasons,
                properties,
            })
        })
}

pub fn unsubscribe(version: Version) -> impl Strategy<Value = Packet> {
    let properties =
        user_properties().prop_map(|user_properties| UnsubscribeProperties { user_properties });
    (
        packet_id(),
        vec(string(), 1..4),
        v5_only(version, properties),
    )
        .prop_map(|(packet_id, filters, properties)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters,
                properties,
            })
        })
}

pub fn unsuback(version: Version) -> impl Strategy<Value = Packet> {
    let reasons = match version {
        Version::V5 => vec(reason(PacketType::UnsubAck), 1..5).boxed(),
        Version::V3_1_1 => Just(Vec::new()).boxed(),
    };
    (packet_id(), reasons, v5_only(version, ack_properties())).prop_map(
        |(packet_id, reasons, properties)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                reasons,
                properties,
            })
        },
    )
}

pub fn pingreq() -> impl Strategy<Value = Packet> {
    Just(Packet::PingReq)
}

pub fn pingresp() -> impl Strategy<Value = Packet> {
    Just(Packet::PingResp)
}

pub fn disconnect(version: Version) -> impl Strategy<Value = Packet> {
    let properties = (
        of(any::<u32>()),
        of(string()),
        user_properties(),
        of(string()),
    )
        .prop_map(|(sei, reason_string, user_properties, server_reference)| {
            DisconnectProperties {
                session_expiry_interval_s: sei,
                reason_string,
                user_properties,
                server_reference,
            }
        });
    let reason = match version {
        Version::V5 => reason(PacketType::Disconnect).boxed(),
        Version::V3_1_1 => Just(ReasonCode::NORMAL_DISCONNECTION).boxed(),
    };
    (reason, v5_only(version, properties))
        .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties }))
}

/// v5 only.
pub fn auth() -> impl Strategy<Value = Packet> {
    let properties = (auth_pair(), of(string()), user_properties()).prop_map(
        |((authentication_method, authentication_data), reason_string, user_properties)| {
            AuthProperties {
                authentication_method,
                authentication_data,
                reason_string,
                user_properties,
            }
        },
    );
    (reason(PacketType::Auth), properties)
        .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }))
}

/// Any packet `version` has.
pub fn packet(version: Version) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        connect(version),
        connack(version),
        publish(version),
        puback(version, PacketType::PubAck),
        puback(version, PacketType::PubRec),
        puback(version, PacketType::PubRel),
        puback(version, PacketType::PubComp),
        subscribe(version),
        suback(version),
        unsubscribe(version),
        unsuback(version),
        pingreq(),
        pingresp(),
        disconnect(version),
    ];
    match version {
        Version::V5 => prop_oneof![13 => common, 1 => auth()].boxed(),
        Version::V3_1_1 => common.boxed(),
    }
}
