#!/usr/bin/env bash
# Builds every guest example into components under
# ${GUEST_TARGET_DIR:-target/wasm-guests}/wasm32-wasip2/release/*.wasm.
# Exists so one command (also used by the sluice-wasm tests) installs what
# the build needs and builds them all. Pass extra cargo flags, e.g. -j1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target_dir="${GUEST_TARGET_DIR:-$root/target/wasm-guests}"

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi

cargo build --manifest-path "$root/guest-examples/rust/Cargo.toml" \
    --target wasm32-wasip2 --release --target-dir "$target_dir" "$@"
ls -1 "$target_dir"/wasm32-wasip2/release/*.wasm
