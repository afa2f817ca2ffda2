//! Arbitrary bytes into the MQTT decoder, as both protocol versions: it must
//! never panic, and must bound every length it reads (here by a 64 KiB
//! packet_bytes_max). Decodes until the input runs out or fails, so that a
//! second packet after a first valid one is reached too.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for version in [sluice_mqtt::Version::V3_1_1, sluice_mqtt::Version::V5] {
        let mut buf = sluice_mqtt::BytesMut::from(data);
        while let Ok(Some(_)) = sluice_mqtt::decode(&mut buf, version, 64 << 10) {}
    }
});
