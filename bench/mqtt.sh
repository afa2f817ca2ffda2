#!/usr/bin/env bash
# MQTT throughput and latency: Sluice against Mosquitto (Debian) side by side,
# interleaved A B A B, broker pinned to core 1 and the load generator to
# core 0 (../shared/BENCHMARKING.md). Rows: QoS 0 and 1, 64 B and 1 KiB,
# 1→1, 4→4 and 1→16. Both brokers get queues large enough that neither drops
# a message, so every row is a no-loss row or a failed one. Then open-loop
# latency at fixed rates, and memory per idle connection with 10,000
# connections. Prints JSON lines and a summary. SECTIONS="openloop" (or
# "throughput", "idle") runs only those parts.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
# Which parts run: closed-loop throughput, open-loop latency, idle memory.
SECTIONS=${SECTIONS:-throughput openloop idle stall}
command -v mosquitto >/dev/null || { echo "needs mosquitto (apt-get install mosquitto)" >&2; exit 1; }
cargo build --release -p sluice -p sluice-loadgen -j2 >&2
BIN=$PWD/target/release/sluice
GEN=$PWD/target/release/sluice-loadgen
WORK=$(mktemp -d)
trap 'pkill -P $$ || true; rm -rf "$WORK"' EXIT
out="$WORK/results.jsonl"
ulimit -n 65536 || true

cat >"$WORK/sluice.toml" <<TOML
[mqtt]
listen = "127.0.0.1:0"
session_queue_messages_max = 1000000
receive_maximum = 65535
sys_interval = "0ms"
connections_max = 20000
TOML
cat >"$WORK/mosquitto.conf" <<CONF
listener 18839 127.0.0.1
allow_anonymous true
max_queued_messages 0
max_inflight_messages 0
max_connections -1
persistence false
CONF

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }

start_sluice() {
  rm -rf "$WORK/data"
  taskset -c 1 "$BIN" serve --config "${SLUICE_CONFIG:-$WORK/sluice.toml}" --data-dir "$WORK/data" --http-listen 127.0.0.1:0 2>/dev/null &
  PID=$!
  for _ in $(seq 200); do [ -f "$WORK/data/ports.json" ] && break; sleep 0.05; done
  ADDR=$(python3 -c "import json;print(json.load(open('$WORK/data/ports.json'))['mqtt'])")
}
start_mosquitto() {
  taskset -c 1 mosquitto -c "$WORK/mosquitto.conf" 2>/dev/null &
  PID=$!
  ADDR=127.0.0.1:18839
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18839) 2>/dev/null && break; sleep 0.05; done
}
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; }

run_row() { # broker qos payload pubs subs count rep [extra loadgen args…]
  local broker=$1 qos=$2 payload=$3 pubs=$4 subs=$5 count=$6 rep=$7
  shift 7
  "start_$broker"
  local t0; t0=$(cpu_ticks "$PID")
  local result
  result=$(taskset -c 0 "$GEN" mqtt --addr "$ADDR" --qos "$qos" --payload-bytes "$payload" \
    --publishers "$pubs" --subscribers "$subs" --count "$count" --time-limit-s 60 "$@" || true)
  local t1; t1=$(cpu_ticks "$PID")
  stop
  echo "$result" | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); d.update(broker='$broker', rep=$rep, shape='${pubs}x${subs}', broker_cpu_s=($t1-$t0)/100); print(json.dumps(d))" >>"$out"
}

has() { [[ " $SECTIONS " == *" $1 "* ]]; }

has throughput && for rep in $(seq 1 "$REPS"); do
  for qos in 0 1; do
    for payload in 64 1024; do
      for shape in "1 1 50000" "4 4 20000" "1 16 10000"; do
        set -- $shape
        run_row sluice "$qos" "$payload" "$1" "$2" "$3" "$rep"
        run_row mosquitto "$qos" "$payload" "$1" "$2" "$3" "$rep"
      done
    done
  done
done

# Open-loop latency: publishers send on a fixed schedule (5 s per run) and
# latency counts from when each message was due. Rates are in messages per
# second per publisher: 5,000/s and 20,000/s through 1→1, 4 × 1,250/s through 4→4.
has openloop && for rep in $(seq 1 "$REPS"); do
  for qos in 0 1; do
    for shape in "1 1 5000" "1 1 20000" "4 4 1250"; do
      set -- $shape
      for broker in sluice mosquitto; do
        run_row "$broker" "$qos" 64 "$1" "$2" $(( $3 * 5 )) "$rep" --rate-per-s "$3"
      done
    done
  done
done

# Memory per idle connection.
has idle && for broker in sluice mosquitto; do
  "start_$broker"
  before=$(rss_kib "$PID")
  : >"$WORK/idle.json"
  taskset -c 0 "$GEN" mqtt-idle --addr "$ADDR" --connections 10000 --hold-s 5 >"$WORK/idle.json" &
  gen=$!
  for _ in $(seq 600); do grep -q '"connected"' "$WORK/idle.json" && break; sleep 0.1; done
  sleep 0.5
  during=$(rss_kib "$PID")
  wait $gen || true
  stop
  echo "{\"mode\":\"idle\",\"broker\":\"$broker\",\"connections\":10000,\"rss_before_kib\":$before,\"rss_during_kib\":$during,\"kib_per_connection\":$(( (during - before) * 1000 / 10000 ))e-3}" >>"$out"
done

# A persistent QoS 1 subscriber that stops reading while 200,000 messages
# arrive for it: with the default queue bound (10,000) the rest waits on
# disk, so the node's memory should stay flat. RSS before and after, and
# the size of the metadata store that holds the messages.
STALL_MESSAGES=${STALL_MESSAGES:-200000}
if has stall; then
  cat >"$WORK/sluice-stall.toml" <<TOML
[mqtt]
listen = "127.0.0.1:0"
sys_interval = "0ms"
TOML
  SLUICE_CONFIG="$WORK/sluice-stall.toml" start_sluice
  python3 - "$ADDR" >"$WORK/stalled.log" 2>&1 <<'PY' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
cid = b"stalled"
# CONNECT v5: no clean start, keep-alive off, session expiry 600 s.
var = b"\x00\x04MQTT\x05\x00\x00\x00" + b"\x05\x11\x00\x00\x02\x58"
body = var + len(cid).to_bytes(2, "big") + cid
s.sendall(bytes([0x10, len(body)]) + body)
topic = b"bench/#"
sub = b"\x00\x01\x00" + len(topic).to_bytes(2, "big") + topic + b"\x01"
s.sendall(bytes([0x82, len(sub)]) + sub)
print("subscribed", flush=True)
time.sleep(120)  # never reads: the broker must hold what it cannot send
PY
  stalled=$!
  sleep 1
  before=$(rss_kib "$PID")
  taskset -c 0 "$GEN" mqtt --addr "$ADDR" --qos 1 --payload-bytes 64 --publishers 1 \
    --subscribers 0 --count "$STALL_MESSAGES" --time-limit-s 100 >"$WORK/stall.json" || true
  sleep 1
  during=$(rss_kib "$PID")
  meta=$(du -k "$WORK/data/meta.redb" | cut -f1)
  kill "$stalled" 2>/dev/null || true
  stop
  echo "{\"mode\":\"stall\",\"broker\":\"sluice\",\"messages\":$STALL_MESSAGES,\"rss_before_kib\":$before,\"rss_after_kib\":$during,\"meta_kib\":$meta,\"publisher\":$(cat "$WORK/stall.json")}" >>"$out"
fi

cat "$out"
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = [r for r in rows if r.get("mode") == "mqtt" and not r.get("rate_per_s")]
keys = sorted({(r["qos"], r["payload_bytes"], r["shape"]) for r in runs})
if keys:
  print("| QoS | payload | shape | Sluice msg/s | Mosquitto msg/s | ratio (median, min–max) | Sluice p50/p99 ms | Mosquitto p50/p99 ms | lost S/M |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for k in keys:
    by = {}
    for r in runs:
        if (r["qos"], r["payload_bytes"], r["shape"]) == k:
            by.setdefault(r["rep"], {})[r["broker"]] = r
    pairs = [v for v in by.values() if "sluice" in v and "mosquitto" in v]
    ratios = [p["sluice"]["delivered_msgs_per_s"] / p["mosquitto"]["delivered_msgs_per_s"] for p in pairs]
    med = lambda b, f: statistics.median(p[b][f] for p in pairs)
    lost = lambda b: sum(p[b]["lost"] for p in pairs)
    print(f"| {k[0]} | {k[1]} B | {k[2].replace('x', '→')} | {med('sluice','delivered_msgs_per_s'):,.0f} | {med('mosquitto','delivered_msgs_per_s'):,.0f} | "
          f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) | {med('sluice','p50_ms'):.1f}/{med('sluice','p99_ms'):.1f} | "
          f"{med('mosquitto','p50_ms'):.1f}/{med('mosquitto','p99_ms'):.1f} | {lost('sluice')}/{lost('mosquitto')} |")
open_loop = [r for r in rows if r.get("mode") == "mqtt" and r.get("rate_per_s")]
if open_loop:
    print()
    print("| QoS | shape | rate msg/s (per publisher) | Sluice p50/p99/max ms | Mosquitto p50/p99/max ms | p99 ratio S/M (median) | broker CPU s S/M | lost S/M |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for k in sorted({(r["qos"], r["shape"], r["rate_per_s"]) for r in open_loop}):
        by = {}
        for r in open_loop:
            if (r["qos"], r["shape"], r["rate_per_s"]) == k:
                by.setdefault(r["rep"], {})[r["broker"]] = r
        pairs = [v for v in by.values() if "sluice" in v and "mosquitto" in v]
        med = lambda b, f: statistics.median(p[b][f] for p in pairs)
        ratio = statistics.median(p["sluice"]["p99_ms"] / max(p["mosquitto"]["p99_ms"], 1e-3) for p in pairs)
        lost = lambda b: sum(p[b]["lost"] for p in pairs)
        print(f"| {k[0]} | {k[1].replace('x', '→')} | {k[2]:,} | {med('sluice','p50_ms'):.2f}/{med('sluice','p99_ms'):.2f}/{med('sluice','max_ms'):.1f} | "
              f"{med('mosquitto','p50_ms'):.2f}/{med('mosquitto','p99_ms'):.2f}/{med('mosquitto','max_ms'):.1f} | {ratio:.2f} | {med('sluice','broker_cpu_s'):.2f}/{med('mosquitto','broker_cpu_s'):.2f} | {lost('sluice')}/{lost('mosquitto')} |")
for r in rows:
    if r.get("mode") == "stall":
        print(f"stalled subscriber: {r['messages']:,} QoS 1 messages at {r['publisher']['publish_msgs_per_s']:,.0f}/s; "
              f"RSS {r['rss_before_kib']} → {r['rss_after_kib']} KiB; metadata store {r['meta_kib']} KiB")
    if r.get("mode") == "idle":
        print(f"idle: {r['broker']}: {r['kib_per_connection']:.2f} KiB per connection ({r['connections']} connections, RSS {r['rss_before_kib']} → {r['rss_during_kib']} KiB)")
PY
