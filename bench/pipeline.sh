#!/usr/bin/env bash
# Pipeline throughput end to end against plain stream capture, side by side
# in one run (issue 4): COUNT JSON messages are published over HTTP into a
# stream (capture only: the baseline), then a pipeline drains that backlog
# through a handler and publishes every output durably into a second stream
# (fsync "always" for both) before committing. Measured: messages per second
# and broker CPU per message, for `redact-json` and `anonymise`. Node pinned
# to core 1, load generator to core 0; REPS interleaved repetitions. Then,
# with the node on both cores, `anonymise` drains the same backlog with
# `runners` 1 and 2 (a runner thread each, partitions shared between them),
# and a backlog of CORPUS ~1 KiB labelled-corpus texts (handler-bound, where
# a second runner has work to share) with `runners` 1 and 2.
# Usage: bench/pipeline.sh   (REPS=3 COUNT=20000 PAYLOAD=200)
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
COUNT=${COUNT:-20000}
PAYLOAD=${PAYLOAD:-200}
CORPUS=${CORPUS:-8000}
cargo build -q --release -p sluice -p sluice-loadgen -j2 >&2
cargo build -q --release -p sluice-anon --example corpus -j2 >&2
cargo build -q --release --target wasm32-wasip2 -j2 --manifest-path guest-examples/rust/Cargo.toml --target-dir target/wasm-guests >&2
WASM=target/wasm-guests/wasm32-wasip2/release
BIN=target/release/sluice
GEN=target/release/sluice-loadgen
WORK=$(mktemp -d -p "${BENCH_DIR:-$PWD/target}")
trap 'rm -rf "$WORK"' EXIT
out="$WORK/results.jsonl"
target/release/examples/corpus "$CORPUS" 1024 >"$WORK/corpus.jsonl"
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

drain() { # url pipeline handler config pid [runners [source]] -> JSON line
  local url=$1 name=$2 handler=$3 config=$4 pid=$5 runners=${6:-1} source=${7:-bench} mode="pipeline-$3"
  [ -n "${6:-}" ] && mode="pipeline-$3-2cores-runners$6"
  [ "$source" != bench ] && mode="$mode-$source"
  local t0 c0
  # The clocks start once the PUT has loaded the handlers (~80 ms an
  # instance for anonymise, one instance per runner): that is start-up, not
  # throughput.
  curl -sf -X PUT "$url/v1/pipelines/$name" -d "{\"source\":\"$source\",\"steps\":[{\"handler\":\"$handler\",\"config\":$config}],\"output\":\"out/$name/{topic}\",\"batch_messages_max\":256,\"runners\":$runners}" >/dev/null
  c0=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
  while :; do
    s=$(curl -sf "$url/v1/pipelines/$name")
    lag=$(echo "$s" | python3 -c "import json,sys; v=json.load(sys.stdin); print(v['lag'] if v['messages_in']>0 else -1)")
    [ "$lag" = 0 ] && break
    sleep 0.05
  done
  t1=$(date +%s.%N); c1=$(cpu_ticks "$pid")
  echo "$s" | python3 -c "import json,sys; v=json.load(sys.stdin); print(json.dumps({'mode': '$mode', 'messages': v['messages_in'], 'out': v['messages_out'], 'dead': v['dead_lettered'], 'seconds': $t1-$t0, 'msgs_per_s': v['messages_in']/($t1-$t0), 'broker_cpu_us_per_msg': ($c1-$c0)*1e4/max(v['messages_in'],1)}))"
}

for rep in $(seq 1 "$REPS"); do
  data="$WORK/data-$rep"
  taskset -c 1 "$BIN" serve --data-dir "$data" --http-listen 127.0.0.1:0 --mqtt-listen 127.0.0.1:0 2>"$WORK/node.log" &
  pid=$!
  for _ in $(seq 100); do [ -f "$data/ports.json" ] && break; sleep 0.05; done
  url="http://$(python3 -c "import json;print(json.load(open('$data/ports.json'))['http'])")"
  curl -sf -X PUT "$url/v1/streams/bench" -d '{"subjects":["bench/#"],"partitions":4}' >/dev/null
  curl -sf -X PUT "$url/v1/streams/out" -d '{"subjects":["out/#"],"partitions":4}' >/dev/null
  curl -sf -X PUT --data-binary "@$WASM/redact_json.wasm" "$url/v1/handlers/redact-json/1" >/dev/null
  curl -sf -X PUT --data-binary "@$WASM/anonymise.wasm" "$url/v1/handlers/anonymise/1" >/dev/null
  c0=$(cpu_ticks $pid)
  result=$(taskset -c 0 "$GEN" http-publish --url "$url" --connections 16 --count "$COUNT" --payload-bytes "$PAYLOAD" --json)
  c1=$(cpu_ticks $pid)
  echo "$result" | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); d['mode']='capture'; d['broker_cpu_us_per_msg']=($c1-$c0)*1e4/max(d.get('acked',1),1); d['rep']=$rep; print(json.dumps(d))" >>"$out"
  drain "$url" p-redact redact-json '{"fields":["/pad"]}' $pid | sed "s/}\$/, \"rep\": $rep}/" >>"$out"
  drain "$url" p-anon anonymise '{}' $pid | sed "s/}\$/, \"rep\": $rep}/" >>"$out"
  taskset -a -p -c 0,1 $pid >/dev/null
  for r in 1 2; do
    drain "$url" "p-anon-r$r" anonymise '{}' $pid $r | sed "s/}\$/, \"rep\": $rep}/" >>"$out"
  done
  curl -sf -X PUT "$url/v1/streams/text" -d '{"subjects":["text/#"],"partitions":4}' >/dev/null
  python3 - "$url" "$WORK/corpus.jsonl" <<'PY'
import http.client, json, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port)
for i, line in enumerate(open(sys.argv[2])):
    c.request("POST", f"/v1/topics/text/{i % 16}", json.loads(line)["text"].encode(),
              {"sluice-key": f"k{i % 16}", "content-type": "text/plain"})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
  for r in 1 2; do
    drain "$url" "p-text-r$r" anonymise '{}' $pid $r text | sed "s/}\$/, \"rep\": $rep}/" >>"$out"
  done
  kill -TERM $pid; wait $pid || true
done
cat "$out"
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(mode, key):
    v = [r[key] for r in rows if r["mode"] == mode and key in r]
    return statistics.median(v) if v else float("nan")
cap = med("capture", "msgs_per_s") if any("msgs_per_s" in r for r in rows if r["mode"] == "capture") else med("capture", "throughput_msgs_s")
print("| mode | msgs/s (median) | broker CPU µs/msg (median) | rate vs capture |")
print("| --- | --- | --- | --- |")
for mode in ("capture", "pipeline-redact-json", "pipeline-anonymise",
             "pipeline-anonymise-2cores-runners1", "pipeline-anonymise-2cores-runners2",
             "pipeline-anonymise-2cores-runners1-text", "pipeline-anonymise-2cores-runners2-text"):
    rate = cap if mode == "capture" else med(mode, "msgs_per_s")
    print(f"| {mode} | {rate:.0f} | {med(mode, 'broker_cpu_us_per_msg'):.1f} | {rate / cap:.2f}x |")
PY
