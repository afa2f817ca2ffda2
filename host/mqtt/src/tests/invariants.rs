//! Invariants of the crate that prose alone would let decay: the payload is
//! never copied, every file says why it exists, and the codec stays sans-IO
//! (its only dependencies are `bytes` and `thiserror`, so neither tokio nor
//! wasmtime can creep in through it).

use std::path::Path;

use super::unhex;
use crate::Version::V5;
use crate::{PACKET_BYTES_MAX, Packet, decode};

#[test]
fn publish_payload_is_a_slice_of_the_input() {
    let mut buf = unhex("30 07 00 01 74 00 61 62 63");
    let input = buf.as_ptr_range();
    let Ok(Some(Packet::Publish(publish))) = decode(&mut buf, V5, PACKET_BYTES_MAX) else {
        panic!("not a PUBLISH");
    };
    assert_eq!(&publish.payload[..], b"abc");
    assert!(
        input.contains(&publish.payload.as_ptr()),
        "the payload was copied"
    );
}

#[test]
fn every_file_starts_with_a_why_paragraph() {
    fn visit(dir: &Path, missing: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, missing);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                if !text.starts_with("//!") {
                    missing.push(path.display().to_string());
                }
            }
        }
    }
    let mut missing = Vec::new();
    visit(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut missing,
    );
    assert!(
        missing.is_empty(),
        "files without a leading //! paragraph: {missing:?}"
    );
}

#[test]
fn dependencies_are_bytes_and_thiserror_only() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps: Vec<&str> = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap()
        .lines()
        .filter_map(|line| line.split(['=', '.']).next().map(str::trim))
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect();
    assert_eq!(deps, ["bytes", "thiserror"]);
}
