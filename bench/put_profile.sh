#!/bin/bash
# put_profile.sh BIN SYNC OUT [TEMPLATE]: where a PUT's CPU goes in kingx's worker and writer processes.
# Starts BIN (one worker, --sync SYNC, 127.0.0.1, ephemeral port) on a copy of TEMPLATE (a data directory,
# e.g. 1M keys of 100 B from fill_db, its key view built once), drives wrk -t1 -c100 PUTs of 100 B to
# random keys of the 1M for 10 s, and from 2 s in for 6 s records: perf stat (syscalls, context switches,
# task-clock) of the worker process and, per thread, of the writer process (OUT.worker.stat,
# OUT.writer.stat); with PERF=1 also perf record -g of the worker (OUT.worker.data). wrk's output and
# `uptime` go to OUT.wrk. Stops only the processes it started, by PID; removes its copy.
set -euo pipefail
BIN=$1; SYNC=$2; OUT=$3; TEMPLATE=${4:-/tmp/writer21/tmpl}
LUA=$(dirname "$(readlink -f "$0")")/lua/kv.lua
D=$(mktemp -d "${TMPDIR:-/tmp}/put_profile.XXXX"); cp -r "$TEMPLATE" "$D/data"
P=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$BIN" --listen 127.0.0.1:$P --data "$D/data" --workers 1 --sync "$SYNC" --access-log off > "$D/log" 2>&1 & KP=$!
cleanup() { kill $KP 2>/dev/null || true; wait $KP 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
for i in $(seq 240); do  # bounded: 120 s for the open
  curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/v1/kv/?limit=1" | grep -q 200 && break; sleep 0.5
done
child() { for p in $(pgrep -P $KP); do if [ "$(cat /proc/$p/comm)" = "$1" ]; then echo $p; fi; done | head -1; }
W=$(child kingx-worker); WR=$(child kingx-writer)
wrk -t1 -c100 -d10s -s "$LUA" http://127.0.0.1:$P/ -- keyp=key- nkeys=1000000 size=100 put_prefix=/v1/kv/ \
  putfrac=1 > "$OUT.wrk" & WP=$!
sleep 2
perf stat -e raw_syscalls:sys_enter,context-switches,task-clock -p $W -o "$OUT.worker.stat" -- sleep 6 & S1=$!
perf stat --per-thread -e raw_syscalls:sys_enter,context-switches,task-clock -p $WR -o "$OUT.writer.stat" \
  -- sleep 6 & S2=$!
if [ "${PERF:-0}" = 1 ]; then perf record -q -F 1999 -g -p $W -o "$OUT.worker.data" -- sleep 6 >/dev/null 2>&1; fi
wait $S1 $S2 $WP
uptime >> "$OUT.wrk"
