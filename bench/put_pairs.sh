#!/bin/bash
# put_pairs.sh OUT SYNC CONNS ROUNDS LABEL=BIN LABEL=BIN...: paired, interleaved PUT rounds of kingx binaries
# with their group commit's batch sizes. Each round runs every binary once, in a shuffled order: a copy of
# TEMPLATE (default /tmp/writer22/tmpl: 1M keys of 100 B from fill_db) served by one worker with --sync SYNC
# on 127.0.0.1 (ephemeral port), wrk -t1 -cCONNS PUTs of 100 B to random keys of the 1M for DURATION (6) s.
# One line per run to OUT (tab-separated): round, label, req/s, server CPU µs per PUT (utime+stime of the
# server's processes over the wrk run, from /proc), writes per group commit and fdatasync µs (from the
# writer's /metrics deltas over the run), `uptime`'s 1-minute load. Stops only the processes it started.
set -euo pipefail
OUT=$1; SYNC=$2; CONNS=$3; ROUNDS=$4; shift 4
TEMPLATE=${TEMPLATE:-/tmp/writer22/tmpl}; DURATION=${DURATION:-6}
LUA=$(dirname "$(readlink -f "$0")")/lua/kv.lua
TCK=$(getconf CLK_TCK)
cpu_ticks() {  # utime+stime of $1 and its children processes (threads included)
  local t=0
  for p in $1 $(pgrep -P $1); do
    [ -r /proc/$p/stat ] && t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat)))
  done
  echo $t
}
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2}'; }
run_one() {  # round label bin
  local D P KP t0 t1 b0 b1 r0 r1 s0 s1 c0 c1 rps
  D=$(mktemp -d "${TMPDIR:-/tmp}/put_pairs.XXXX"); cp -r "$TEMPLATE" "$D/data"
  P=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  "$3" --listen 127.0.0.1:$P --data "$D/data" --workers 1 --sync "$SYNC" --access-log off > "$D/log" 2>&1 & KP=$!
  for i in $(seq 240); do  # bounded: 120 s for the open
    curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/v1/kv/?limit=1" | grep -q 200 && break; sleep 0.5
  done
  b0=$(metric $P kingx_writer_batches_total); r0=$(metric $P kingx_writer_records_total)
  s0=$(metric $P kingx_writer_fsync_seconds_sum); c0=$(metric $P kingx_writer_fsync_seconds_count)
  t0=$(cpu_ticks $KP)
  rps=$(wrk -t1 -c"$CONNS" -d${DURATION}s -s "$LUA" http://127.0.0.1:$P/ -- keyp=key- nkeys=1000000 size=100 \
        put_prefix=/v1/kv/ putfrac=1 | awk '/^Requests\/sec/ {print $2}')
  t1=$(cpu_ticks $KP)
  b1=$(metric $P kingx_writer_batches_total); r1=$(metric $P kingx_writer_records_total)
  s1=$(metric $P kingx_writer_fsync_seconds_sum); c1=$(metric $P kingx_writer_fsync_seconds_count)
  kill $KP; wait $KP 2>/dev/null || true; rm -rf "$D"
  python3 - "$1" "$2" "$rps" "$t0" "$t1" "$TCK" "$b0" "$b1" "$r0" "$r1" "$s0" "$s1" "$c0" "$c1" "$DURATION" \
      "$(cut -d' ' -f1 /proc/loadavg)" <<'PY' >> "$OUT"
import sys
rnd, label, rps, t0, t1, tck, b0, b1, r0, r1, s0, s1, c0, c1, dur, load = sys.argv[1:]
reqs = float(r1) - float(r0)
cpu_us = (int(t1) - int(t0)) / int(tck) * 1e6
batches = float(b1) - float(b0)
syncs = float(c1) - float(c0)
sync_us = (float(s1) - float(s0)) / syncs * 1e6 if syncs else 0
print(f"{rnd}\t{label}\t{float(rps):.0f}\t{cpu_us / reqs if reqs else 0:.2f}\t{reqs / batches if batches else 0:.1f}"
      f"\t{sync_us:.0f}\t{load}")
PY
}
for r in $(seq "$ROUNDS"); do
  for spec in $(printf '%s\n' "$@" | shuf); do
    run_one "$r" "${spec%%=*}" "${spec#*=}"
  done
done
