#!/usr/bin/env bash
# Issue 5 at the server level: GET p99 under a sustained uniform-overwrite load
# with compaction on against the same run with --compaction off, and disk usage
# of the data directory against the live bytes kingx reports in /metrics.
#
#   bench/compaction_server.sh [rounds]        (env: KINGX_BIN, KEYS, DURATION)
#
# Each round runs "off" then "on" (fresh data directory each), so machine drift
# hits both alike. Per run: preload KEYS keys of 100 B, then 8 connections
# overwrite uniformly random keys for DURATION s while, after 5 s, 32
# connections GET uniformly random keys; du and /metrics are sampled every
# second of the GET window. Servers listen on 127.0.0.1 and are stopped by PID.
# Writes bench/results/<date>-compaction-server/{runs.jsonl,README.md}.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${KINGX_BIN:-$root/build/src/kingx}
keys=${KEYS:-50000}
duration=${DURATION:-30}
rounds=${1:-3}
lua=$root/bench/lua/kv.lua
out=$root/bench/results/$(date -u +%Y-%m-%d)-compaction-server
mkdir -p "$out"
: >"$out/runs.jsonl"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

metric() {  # port name (reads the whole page: an early exit would SIGPIPE curl under pipefail)
  curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n && !seen {print $2; seen = 1}' || true
}

run_one() {  # round mode
  local round=$1 mode=$2 tmp port pid
  tmp=$(mktemp -d)
  port=$(free_port)
  "$bin" --listen "127.0.0.1:$port" --data "$tmp/data" --workers 1 --segment-bytes 1M \
    --compaction "$mode" --error-log "$tmp/error.log" &
  pid=$!
  trap 'kill "$pid" 2>/dev/null || true' EXIT  # never leave a server behind
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && break
    sleep 0.1
  done
  wrk -t1 -c16 -d5s -s "$lua" "http://127.0.0.1:$port" -- putfrac=1 nkeys="$keys" >/dev/null
  wrk -t1 -c8 -d"${duration}s" -s "$lua" "http://127.0.0.1:$port" -- putfrac=1 nkeys="$keys" >"$tmp/put.txt" &
  local put_pid=$!
  sleep 5
  wrk -t1 -c32 -d"$((duration - 10))s" --latency -s "$lua" "http://127.0.0.1:$port" -- putfrac=0 nkeys="$keys" \
    >"$tmp/get.txt" &
  local get_pid=$!
  local samples=""
  # Bounded: one sample a second for the GET window.
  for _ in $(seq 1 $((duration - 10))); do
    sleep 1
    local disk live
    disk=$(du -sb "$tmp/data" 2>/dev/null | cut -f1)
    live=$(metric "$port" kingx_engine_live_bytes)
    [ -n "$live" ] && samples="$samples${samples:+,}[$disk,${live%.*}]"
  done
  wait "$get_pid" "$put_pid" || true
  kill -QUIT "$pid"; wait "$pid" || true
  trap - EXIT
  local get put
  get=$(grep '^WRKJSON' "$tmp/get.txt" | cut -d' ' -f2-)
  put=$(grep '^WRKJSON' "$tmp/put.txt" | cut -d' ' -f2-)
  echo "{\"round\":$round,\"compaction\":\"$mode\",\"get\":$get,\"put\":$put,\"disk_live\":[$samples]}" \
    >>"$out/runs.jsonl"
  rm -rf "$tmp"
}

for round in $(seq 1 "$rounds"); do
  for mode in off on; do
    run_one "$round" "$mode"
    echo "round $round compaction $mode done" >&2
  done
done

python3 - "$out" "$keys" "$duration" <<'PY'
import json, statistics, sys
out, keys, duration = sys.argv[1], sys.argv[2], sys.argv[3]
runs = [json.loads(l) for l in open(f"{out}/runs.jsonl")]
rows = []
for r in runs:
    amp = [d / l for d, l in r["disk_live"] if l > 0]
    rows.append((r["round"], r["compaction"], r["get"]["requests"] * 1e6 / r["get"]["duration_us"],
                 r["get"]["p99_us"] / 1000, r["put"]["requests"] * 1e6 / r["put"]["duration_us"],
                 max(amp) if amp else float("nan"), statistics.mean(amp) if amp else float("nan")))
ratios = []
for rnd in sorted({r[0] for r in rows}):
    on = [r for r in rows if r[0] == rnd and r[1] == "on"]
    off = [r for r in rows if r[0] == rnd and r[1] == "off"]
    if on and off:
        ratios.append(on[0][3] / off[0][3])
with open(f"{out}/README.md", "w") as f:
    f.write(f"# Compaction at the server level\n\n`bench/compaction_server.sh` ({keys} keys of 100 B, "
            f"{duration} s of overwrites per run, GET load in the middle, 1 MiB segments, sync=always).\n\n")
    f.write("| round | compaction | GET req/s | GET p99 ms | PUT req/s | disk/live max | disk/live mean |\n|---|---|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r[0]} | {r[1]} | {r[2]:.0f} | {r[3]:.2f} | {r[4]:.0f} | {r[5]:.2f} | {r[6]:.2f} |\n")
    if ratios:
        f.write(f"\nGET p99 with compaction / without, per round: {', '.join(f'{x:.2f}' for x in ratios)}"
                f" (median {statistics.median(ratios):.2f}).\n")
print(open(f"{out}/README.md").read())
PY
