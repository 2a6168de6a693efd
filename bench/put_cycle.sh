#!/bin/bash
# put_cycle.sh BIN SYNC OUT [TEMPLATE] [CONNS]: one group commit's cycle on one timeline, from system calls.
# Starts BIN (one worker, --sync SYNC, 127.0.0.1, ephemeral port) on a copy of TEMPLATE (a data directory,
# e.g. 1M keys of 100 B from fill_db), or with SYNC=nginx BIN as nginx with bench/compare's nginx-return-w1
# configuration (PUTs to /r/, body discarded), drives wrk -t1 -cCONNS (default 100) PUTs of 100 B to random keys of
# the 1M for 8 s, and from 3 s in records for 1 s, with perf, the system calls that mark a batch's way in
# the worker and writer processes: the segment's pwrite64, fdatasync, the writer's eventfd writes (answers
# posted), its poll (waiting for entries), the worker's epoll wake-ups, socket reads (requests arriving) and
# writevs (answers written). OUT.perf.txt holds `perf script`; OUT.wrk wrk's output, `uptime` and the
# server's /metrics; bench/put_cycle.py turns OUT.perf.txt into per-cycle timelines. Stops only the
# processes it started, by PID; removes its copy.
set -euo pipefail
BIN=$1; SYNC=$2; OUT=$3; TEMPLATE=${4:-/tmp/writer22/tmpl}; CONNS=${5:-100}
LUA=$(dirname "$(readlink -f "$0")")/lua/kv.lua
D=$(mktemp -d "${TMPDIR:-/tmp}/put_cycle.XXXX"); cp -r "$TEMPLATE" "$D/data"
P=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
PREFIX=/v1/kv/
if [ "$SYNC" = nginx ]; then
  # BIN is nginx: bench/compare's nginx-return-w1 (one worker; a PUT's body is read and discarded).
  PREFIX=/r/
  PYTHONPATH=$(dirname "$(readlink -f "$0")") python3 -c "from harness import peers
import sys; open(sys.argv[1] + '/nginx.conf', 'w').write(peers.nginx_conf(sys.argv[1], int(sys.argv[2]), 1, False))" "$D" $P
  mkdir -p "$D/www"
  "$BIN" -p "$D" -c "$D/nginx.conf" -e "$D/error.log" > "$D/log" 2>&1 & KP=$!
else
  "$BIN" --listen 127.0.0.1:$P --data "$D/data" --workers 1 --sync "$SYNC" --access-log off > "$D/log" 2>&1 & KP=$!
fi
cleanup() { kill $KP 2>/dev/null || true; wait $KP 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
for i in $(seq 240); do  # bounded: 120 s for the open
  curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P${PREFIX}?limit=1" | grep -q 200 && break; sleep 0.5
done
child() { for p in $(pgrep -P $KP); do if [ "$(cat /proc/$p/comm)" = "$1" ]; then echo $p; fi; done | head -1; }
if [ "$SYNC" = nginx ]; then
  W=$(pgrep -P $KP | head -1); WR=$W
else
  W=$(child kingx-worker); WR=$(child kingx-writer)
fi
echo "worker $W writer $WR" > "$OUT.pids"
wrk -t1 -c"$CONNS" -d8s -s "$LUA" http://127.0.0.1:$P/ -- keyp=key- nkeys=1000000 size=100 put_prefix=$PREFIX \
  putfrac=1 > "$OUT.wrk" & WP=$!
sleep 3
E=syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync,syscalls:sys_enter_pwrite64,syscalls:sys_enter_write
E=$E,syscalls:sys_enter_poll,syscalls:sys_exit_poll,syscalls:sys_enter_epoll_wait,syscalls:sys_exit_epoll_wait
E=$E,syscalls:sys_exit_read,syscalls:sys_enter_writev,syscalls:sys_enter_read,syscalls:sys_enter_recvfrom
E=$E,syscalls:sys_exit_recvfrom
perf record -q -e "$E" -p "$(echo "$W,$WR" | tr , "\n" | sort -u | paste -sd,)" -o "$OUT.data" -- sleep 1 >/dev/null 2>&1
wait $WP
uptime >> "$OUT.wrk"
curl -s "http://127.0.0.1:$P/metrics" | grep -E '^kingx_writer_(batches|records)_total|^kingx_writer_fsync_seconds_(sum|count)' >> "$OUT.wrk" || true
perf script -i "$OUT.data" -F tid,time,event,trace > "$OUT.perf.txt" 2>/dev/null
rm -f "$OUT.data"
