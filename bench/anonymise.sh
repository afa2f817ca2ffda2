#!/usr/bin/env bash
# The anonymisation benchmark of issue 5, side by side in one run: the
# `anonymise` handler in Wasm and the same sluice-anon policy natively
# (host/wasm/benches/anon_cost.rs), and Microsoft Presidio's analyzer +
# anonymizer with its pattern recognizers (bench/presidio), all on the
# project's labelled corpus of ~100-byte and ~1 KiB records, in records per
# CPU-second. Pinned to one core each when taskset exists.
# Usage: bench/anonymise.sh   (REPS=5 SECONDS_PER_CASE=1 by default)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
reps="${REPS:-5}"
pin=""
command -v taskset >/dev/null && pin="taskset -c 1"
mkdir -p target/bench
for size in 100 1024; do
    cargo run -q --release -p sluice-anon --example corpus -- 2000 "$size" > "target/bench/corpus-$size.jsonl"
done
echo "== sluice: native vs Wasm ($(date -u +%FT%TZ), $(nproc) cores)"
cargo bench -q -p sluice-wasm --bench anon_cost -j1 --no-run
BENCH_REPS="$reps" BENCH_SECONDS="${SECONDS_PER_CASE:-1}" $pin cargo bench -q -p sluice-wasm --bench anon_cost -j1 2> target/bench/anon_cost.jsonl
echo "== Presidio $(grep -i '^presidio-analyzer' bench/presidio/requirements.txt)"
for size in 100 1024; do
    repeat=$(( size == 100 ? 3 : 1 ))
    $pin bench/presidio/run.sh --corpus "target/bench/corpus-$size.jsonl" --repeat "$repeat" --json \
        > "target/bench/presidio-$size.json"
done
python3 - <<'PY'
import json
rows = [json.loads(l) for l in open("target/bench/anon_cost.jsonl") if l.startswith("{")]
print("| records | Presidio records/CPU-s | Sluice Wasm (text) | Wasm / Presidio |")
print("| --- | --- | --- | --- |")
for size in (100, 1024):
    p = json.load(open(f"target/bench/presidio-{size}.json"))
    pr = p["records_per_cpu_second"]
    w = next(r for r in rows if r["bytes"] == size and r["format"] == "text")["wasm_per_cpu_s"]
    print(f"| ~{size} B | {pr:.0f} | {w:.0f} | {w / pr:.0f}x |")
PY
