#!/usr/bin/env bash
# Builds every guest example in every language into components: the Rust
# ones under ${GUEST_TARGET_DIR:-target/wasm-guests}/wasm32-wasip2/release/,
# the JavaScript, Python and C `filter` under .../polyglot/ (by
# build-polyglot.sh, which installs their pinned toolchains when missing).
# Exists so one command installs what the builds need and builds them all.
# Pass extra cargo flags, e.g. -j1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target_dir="${GUEST_TARGET_DIR:-$root/target/wasm-guests}"

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi

cargo build --manifest-path "$root/guest-examples/rust/Cargo.toml" \
    --target wasm32-wasip2 --release --target-dir "$target_dir" "$@"
ls -1 "$target_dir"/wasm32-wasip2/release/*.wasm
GUEST_TARGET_DIR="$target_dir" bash "$root/guest-examples/build-polyglot.sh"
