//! Builds the Rust guest examples once per process and hands out their
//! component bytes. It exists so that `cargo test` and `sluice demo` work
//! on a fresh machine with rustup alone: it adds the wasm32-wasip2 target if
//! missing and runs cargo on `guest-examples/rust` into its own target
//! directory (the main one may be locked by the cargo that runs us).
//! [`polyglot`] does the same for the `filter` example in the other guest
//! languages, through `guest-examples/build-polyglot.sh`, which installs
//! their pinned toolchains (npm, PyPI, Debian, crates.io) when missing.
//! Included with `#[path]` by the `sluice-wasm` tests and benchmark, the
//! end-to-end tests and the `sluice` binary; every includer sits two levels
//! below the repository root, which `CARGO_MANIFEST_DIR` gives.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The component bytes of the guest crate `name` (e.g. `redact-json`);
/// panics when it cannot be built (tests).
pub fn guest(name: &str) -> Vec<u8> {
    try_guest(name).unwrap_or_else(|e| panic!("{e}"))
}

/// The component bytes of the guest crate `name`, building every guest
/// first if this process has not yet.
pub fn try_guest(name: &str) -> Result<Vec<u8>, String> {
    let dir = built_dir()?;
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))
}

fn built_dir() -> Result<&'static Path, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(build_all).as_deref().map_err(|e| e.clone())
}

/// Where the guests are built: `$GUEST_TARGET_DIR`, else
/// `target/wasm-guests` of the repository.
pub fn target_dir() -> PathBuf {
    std::env::var_os("GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm-guests"))
}

/// The compile cache the tests and benchmarks share
/// (`RuntimeConfig::cache_dir`), so the 12-18 MB JavaScript and Python
/// components are compiled once per machine, not once per run.
pub fn compile_cache_dir() -> PathBuf {
    target_dir().join("compiled")
}

fn build_all() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target_dir = target_dir();
    ensure_wasm_target()?;
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
        .map_err(|e| format!("cannot run cargo to build the guest examples: {e}"))?;
    if !status.success() {
        return Err("building guest-examples/rust failed (see cargo's output above)".into());
    }
    Ok(target_dir.join("wasm32-wasip2/release"))
}

fn ensure_wasm_target() -> Result<(), String> {
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
    if installed {
        return Ok(());
    }
    let ok = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err("rustup target add wasm32-wasip2 failed".into())
    }
}

/// The languages [`polyglot`] knows, Rust (the reference) first.
pub const POLYGLOT_LANGS: [&str; 4] = ["rust", "js", "python", "c"];

/// The component bytes of the `filter` example written in `lang` (`rust`,
/// `js`, `python` or `c`); panics with what to install when it cannot be
/// built (tests).
pub fn polyglot(lang: &str) -> Vec<u8> {
    try_polyglot(lang).unwrap_or_else(|e| panic!("{e}"))
}

/// The component bytes of the `filter` example written in `lang`, running
/// `guest-examples/build-polyglot.sh` first (once per process) for the
/// languages other than Rust, whose `filter` is [`try_guest`]'s.
pub fn try_polyglot(lang: &str) -> Result<Vec<u8>, String> {
    if lang == "rust" {
        return try_guest("filter");
    }
    if !POLYGLOT_LANGS.contains(&lang) {
        return Err(format!(
            "no polyglot guest for {lang:?}; known: {POLYGLOT_LANGS:?}"
        ));
    }
    let path = polyglot_dir()?.join(format!("{lang}-filter.wasm"));
    std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))
}

fn polyglot_dir() -> Result<&'static Path, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(build_polyglot)
        .as_deref()
        .map_err(|e| e.clone())
}

fn build_polyglot() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("guest-examples/build-polyglot.sh");
    let target_dir = target_dir();
    let status = Command::new("bash")
        .arg(&script)
        .env("GUEST_TARGET_DIR", &target_dir)
        // Flags meant for the host build must not leak into a tool built
        // with `cargo install` (wit-bindgen).
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .status()
        .map_err(|e| format!("cannot run bash {}: {e}", script.display()))?;
    if !status.success() {
        return Err(format!(
            "{} failed ({status}); its output above says which tool is missing and how to \
             install it",
            script.display()
        ));
    }
    Ok(target_dir.join("polyglot"))
}
