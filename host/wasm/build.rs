//! Lists the Rust guest examples so the test suite can refuse to build
//! when one of them has no test (`foreach_guest!(assert_test_exists)`,
//! the scheme of wasmtime's `crates/test-programs`). It only reads
//! directory names; the guests themselves are compiled by the tests
//! (`guest-examples/guests.rs`), so a plain `cargo build` stays fast.

use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-examples/rust");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().join("Cargo.toml").is_file())
                .map(|e| e.file_name().to_string_lossy().replace('-', "_"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let calls: String = names.iter().map(|n| format!("$mac!({n});")).collect();
    let src = format!(
        "/// Calls `$mac!(name)` for every guest in guest-examples/rust.\n\
         #[allow(unused_macros)]\n\
         macro_rules! foreach_guest {{ ($mac:ident) => {{ {calls} }}; }}\n"
    );
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("guests.rs");
    std::fs::write(out, src).expect("write guests.rs");
}
