#!/usr/bin/env bash
# Durable publish throughput: Sluice over HTTP with fsync = "always" (group
# commit) against the raw peer for durable appends, a write + fdatasync loop
# on the same file system. Interleaved A B A B, 5 repetitions, node pinned to
# core 1 and the load generator to core 0 (see ../shared/BENCHMARKING.md).
# Prints one JSON line per run and a summary with the median ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
CONNS=${CONNS:-16}
COUNT=${COUNT:-20000}
PAYLOAD=${PAYLOAD:-64}
cargo build --release -p sluice -p sluice-loadgen -j2 >&2
BIN=target/release/sluice
GEN=target/release/sluice-loadgen
WORK=$(mktemp -d -p "${BENCH_DIR:-$PWD}")
trap 'rm -rf "$WORK"' EXIT
out="$WORK/results.jsonl"

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

for rep in $(seq 1 "$REPS"); do
  data="$WORK/data-$rep"
  taskset -c 1 "$BIN" serve --data-dir "$data" --http-listen 127.0.0.1:0 --mqtt-listen 127.0.0.1:0 2>"$WORK/node.log" &
  pid=$!
  for _ in $(seq 100); do [ -f "$data/ports.json" ] && break; sleep 0.05; done
  url="http://$(python3 -c "import json;print(json.load(open('$data/ports.json'))['http'])")"
  curl -sf -X PUT "$url/v1/streams/bench" -d '{"subjects":["bench/#"],"partitions":4}' >/dev/null
  t0=$(cpu_ticks $pid)
  result=$(taskset -c 0 "$GEN" http-publish --url "$url" --connections "$CONNS" --count "$COUNT" --payload-bytes "$PAYLOAD")
  t1=$(cpu_ticks $pid)
  echo "$result" | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); d['rep']=$rep; d['broker_cpu_s']=($t1-$t0)/100; print(json.dumps(d))" >>"$out"
  kill -TERM $pid; wait $pid || true
  taskset -c 0 "$GEN" fsync-baseline --count 1000 --dir "$WORK" | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); d['rep']=$rep; print(json.dumps(d))" >>"$out"
done
cat "$out"
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows: by.setdefault(r["rep"], {})[r["mode"]] = r
ratios = [v["http-publish"]["msgs_per_s"] / v["fsync-baseline"]["msgs_per_s"] for v in by.values()]
sl = [v["http-publish"] for v in by.values()]
per_cpu = [r["acked"] / r["broker_cpu_s"] for r in sl if r["broker_cpu_s"] > 0]
print(json.dumps({
  "sluice_msgs_per_s_median": statistics.median(r["msgs_per_s"] for r in sl),
  "sluice_p50_ms_median": statistics.median(r["p50_ms"] for r in sl),
  "sluice_p99_ms_median": statistics.median(r["p99_ms"] for r in sl),
  "sluice_msgs_per_broker_cpu_s_median": statistics.median(per_cpu) if per_cpu else None,
  "fsync_baseline_per_s_median": statistics.median(v["fsync-baseline"]["msgs_per_s"] for v in by.values()),
  "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
  "lost": sum(r["lost"] for r in sl),
  "loadgen_core_busy_median": statistics.median(r["loadgen_cpu_s"] / r["seconds"] for r in sl),
}, indent=1))
PY
