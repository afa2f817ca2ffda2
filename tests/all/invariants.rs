//! Architecture invariants kept by tests rather than prose: the log and the
//! core vocabulary (and the anonymisation library, which must also compile
//! to Wasm) build without tokio or wasmtime (EXAMPLES.md, "The host
//! crate split"), so they stay fast to build and free of async concerns.

use std::collections::{HashMap, HashSet};
use std::process::Command;

#[test]
fn log_and_core_depend_on_neither_tokio_nor_wasmtime() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            &host_triple(),
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let deps: HashMap<&str, Vec<(&str, bool)>> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let ds = n["deps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let normal = d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null());
                    (d["pkg"].as_str().unwrap(), normal)
                })
                .collect();
            (n["id"].as_str().unwrap(), ds)
        })
        .collect();
    for krate in ["sluice-log", "sluice-core", "sluice-anon"] {
        let root = names
            .iter()
            .find(|(_, n)| **n == krate)
            .map(|(id, _)| *id)
            .unwrap();
        let mut seen = HashSet::new();
        let mut todo = vec![root];
        while let Some(id) = todo.pop() {
            if !seen.insert(id) {
                continue;
            }
            let name = names[id];
            assert!(
                !name.starts_with("tokio") && !name.starts_with("wasmtime"),
                "{krate} depends on {name}"
            );
            todo.extend(
                deps[id]
                    .iter()
                    .filter(|(_, normal)| *normal)
                    .map(|(d, _)| *d),
            );
        }
    }
}

/// The target we build for here, so metadata need not fetch other platforms' crates.
fn host_triple() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("host line")
        .to_owned()
}

/// Every Rust file opens with a `//!` paragraph saying why it exists
/// (rust-analyzer checks the same in its `tidy.rs`).
#[test]
fn every_rust_file_says_why_it_exists() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut missing = Vec::new();
    let mut todo: Vec<std::path::PathBuf> =
        ["host", "tests", "bench", "sdk", "guest-examples", "fuzz"]
            .iter()
            .map(|d| root.join(d))
            .collect();
    let mut checked = 0;
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && !name.to_string_lossy().starts_with('.') {
                    todo.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                checked += 1;
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if !text.starts_with("//!") {
                    missing.push(
                        path.strip_prefix(root)
                            .unwrap_or(&path)
                            .display()
                            .to_string(),
                    );
                }
            }
        }
    }
    assert!(
        checked > 50,
        "found only {checked} Rust files; is the walk right?"
    );
    assert!(
        missing.is_empty(),
        "files without a `//!` opening paragraph: {missing:?}"
    );
}
