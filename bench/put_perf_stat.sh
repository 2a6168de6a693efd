#!/bin/bash
# put_perf_stat.sh OUT SYNC CONNS ROUNDS LABEL=BIN LABEL=BIN...: the kernel's software counters of kingx's
# process tree per PUT (perf stat: context switches, CPU migrations, task-clock, system calls), paired and
# interleaved as put_pairs.sh runs them: each round runs every binary once, in a shuffled order, on a copy of
# TEMPLATE (default /tmp/writer24/tmpl: 1M keys of 100 B from fill_db), one worker, --sync SYNC, 127.0.0.1
# (ephemeral port), wrk -t1 -cCONNS PUTs of 100 B to random keys of the 1M for DURATION (6) s. perf counts every
# thread of the master, worker and writer from just before the wrk run to just after it; the PUTs are the
# writer's records over the same window. One line per run to OUT (tab-separated): round, label, req/s, context
# switches per PUT, migrations per PUT, task-clock µs per PUT, system calls per PUT, writes per group commit,
# `uptime`'s 1-minute load. (This VM has no hardware counters: cycles and instructions are "not supported";
# bench/callgrind_put.sh counts instructions.) Stops only the processes it started.
set -euo pipefail
OUT=$1; SYNC=$2; CONNS=$3; ROUNDS=$4; shift 4
TEMPLATE=${TEMPLATE:-/tmp/writer24/tmpl}; DURATION=${DURATION:-6}
LUA=$(dirname "$(readlink -f "$0")")/lua/kv.lua
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2}'; }
run_one() {  # round label bin
  local D P KP PP pids r0 r1 b0 b1 rps
  D=$(mktemp -d "${TMPDIR:-/tmp}/put_perf.XXXX"); cp -r "$TEMPLATE" "$D/data"
  P=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  "$3" --listen 127.0.0.1:$P --data "$D/data" --workers 1 --sync "$SYNC" --access-log off > "$D/log" 2>&1 & KP=$!
  for i in $(seq 240); do  # bounded: 120 s for the open
    curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/v1/kv/?limit=1" | grep -q 200 && break; sleep 0.5
  done
  pids=$(echo $KP $(pgrep -P $KP) | tr ' ' ',')
  perf stat -x, -e context-switches,cpu-migrations,task-clock,raw_syscalls:sys_enter -p "$pids" -o "$D/perf" & PP=$!
  sleep 0.2  # perf attached (its counts start before the first PUT either way)
  r0=$(metric $P kingx_writer_records_total); b0=$(metric $P kingx_writer_batches_total)
  rps=$(wrk -t1 -c"$CONNS" -d${DURATION}s -s "$LUA" http://127.0.0.1:$P/ -- keyp=key- nkeys=1000000 size=100 \
        put_prefix=/v1/kv/ putfrac=1 | awk '/^Requests\/sec/ {print $2}')
  r1=$(metric $P kingx_writer_records_total); b1=$(metric $P kingx_writer_batches_total)
  kill -INT $PP; wait $PP 2>/dev/null || true
  kill $KP; wait $KP 2>/dev/null || true
  python3 - "$1" "$2" "$rps" "$r0" "$r1" "$b0" "$b1" "$D/perf" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY' >> "$OUT"
import sys
rnd, label, rps, r0, r1, b0, b1, perf, load = sys.argv[1:]
n = float(r1) - float(r0)
c = {}
for line in open(perf):
    f = line.strip().split(',')
    if len(f) > 2 and f[0] and f[0][0].isdigit():
        c[f[2]] = float(f[0])
batches = float(b1) - float(b0)
cols = [f"{float(rps):.0f}", f"{c.get('context-switches', 0) / n:.3f}", f"{c.get('cpu-migrations', 0) / n:.4f}",
        f"{c.get('task-clock', 0) * 1e3 / n:.2f}", f"{c.get('raw_syscalls:sys_enter', 0) / n:.2f}",
        f"{n / batches if batches else 0:.1f}"]
print("\t".join([rnd, label] + cols + [load]))
PY
  rm -rf "$D"
}
for r in $(seq "$ROUNDS"); do
  for spec in $(printf '%s\n' "$@" | shuf); do
    run_one "$r" "${spec%%=*}" "${spec#*=}"
  done
done
