//! Arbitrary bytes into the log's batch decoder: it must never panic, and must
//! bound every length it reads (here by a 1 MiB batch_bytes_max).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = sluice_log::batch::decode(data, 1 << 20);
});
