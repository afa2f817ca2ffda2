//! Encode-then-decode property tests: one per packet type and version, so a
//! failure names the packet, over arbitrary valid values including every
//! v5 property.

use proptest::prelude::*;

use super::roundtrip;
use super::strategies as s;
use crate::PacketType;
use crate::Version::{V3_1_1, V5};

macro_rules! roundtrips {
    ($($name:ident: $strategy:expr, $version:expr;)*) => {
        proptest! {
            $(
                #[test]
                fn $name(packet in $strategy) {
                    roundtrip(&packet, $version);
                }
            )*
        }
    };
}

roundtrips! {
    connect_v3: s::connect(V3_1_1), V3_1_1;
    connect_v5: s::connect(V5), V5;
    connack_v3: s::connack(V3_1_1), V3_1_1;
    connack_v5: s::connack(V5), V5;
    publish_v3: s::publish(V3_1_1), V3_1_1;
    publish_v5: s::publish(V5), V5;
    puback_v3: s::puback(V3_1_1, PacketType::PubAck), V3_1_1;
    puback_v5: s::puback(V5, PacketType::PubAck), V5;
    pubrec_v3: s::puback(V3_1_1, PacketType::PubRec), V3_1_1;
    pubrec_v5: s::puback(V5, PacketType::PubRec), V5;
    pubrel_v3: s::puback(V3_1_1, PacketType::PubRel), V3_1_1;
    pubrel_v5: s::puback(V5, PacketType::PubRel), V5;
    pubcomp_v3: s::puback(V3_1_1, PacketType::PubComp), V3_1_1;
    pubcomp_v5: s::puback(V5, PacketType::PubComp), V5;
    subscribe_v3: s::subscribe(V3_1_1), V3_1_1;
    subscribe_v5: s::subscribe(V5), V5;
    suback_v3: s::suback(V3_1_1), V3_1_1;
    suback_v5: s::suback(V5), V5;
    unsubscribe_v3: s::unsubscribe(V3_1_1), V3_1_1;
    unsubscribe_v5: s::unsubscribe(V5), V5;
    unsuback_v3: s::unsuback(V3_1_1), V3_1_1;
    unsuback_v5: s::unsuback(V5), V5;
    pingreq_v3: s::pingreq(), V3_1_1;
    pingreq_v5: s::pingreq(), V5;
    pingresp_v3: s::pingresp(), V3_1_1;
    pingresp_v5: s::pingresp(), V5;
    disconnect_v3: s::disconnect(V3_1_1), V3_1_1;
    disconnect_v5: s::disconnect(V5), V5;
    auth_v5: s::auth(), V5;
}

/// A CONNECT is self-describing: decoding it on a connection whose version
/// is not yet known (or wrongly assumed) still reads it at its own level.
#[test]
fn connect_is_read_at_its_own_level() {
    use crate::{BytesMut, PACKET_BYTES_MAX, decode};
    let mut runner = proptest::test_runner::TestRunner::default();
    for (own, assumed) in [(V3_1_1, V5), (V5, V3_1_1)] {
        runner
            .run(&s::connect(own), |packet| {
                let mut buf = BytesMut::from(&super::encode_to_vec(&packet, own).unwrap()[..]);
                prop_assert_eq!(
                    decode(&mut buf, assumed, PACKET_BYTES_MAX),
                    Ok(Some(packet))
                );
                Ok(())
            })
            .unwrap();
    }
}
