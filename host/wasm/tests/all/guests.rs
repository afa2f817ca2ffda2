//! Builds the Rust guest examples once per test run and hands out their
//! component bytes. It exists so `cargo test` alone works on a fresh
//! machine with rustup: it adds the wasm32-wasip2 target if missing and
//! runs cargo on `guest-examples/rust` into its own target directory (the
//! main one is locked by the cargo running the tests). Also used by the
//! benchmark through `#[path]`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The component bytes of the guest crate `name` (e.g. `redact-json`).
pub fn guest(name: &str) -> Vec<u8> {
    let path = built_dir().join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn built_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(build_all)
}

fn build_all() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target_dir = std::env::var_os("GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/wasm-guests"));
    ensure_wasm_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("guest-examples/rust/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // Flags meant for the host build must not leak into the guests'.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .status()
        .expect("run cargo to build the guest examples");
    assert!(status.success(), "building guest-examples/rust failed");
    target_dir.join("wasm32-wasip2/release")
}

fn ensure_wasm_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "wasm32-wasip2")
        })
        // No rustup: assume the toolchain was set up some other way.
        .unwrap_or(true);
    if !installed {
        let ok = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "rustup target add wasm32-wasip2 failed");
    }
}
