#!/bin/bash
# syscalls_per_request.sh KINGX MODEL GET|PUT CONNS [SECONDS]: system calls by name, context switches and
# wake-ups per request of one kingx worker process (all its threads: the event loop, or the thread pool's
# acceptor, dispatcher and pool), counted by `perf stat -p` over SECONDS (default 5) of wrk -t1 -cCONNS load:
# GETs of 100 B values or PUTs of 100 B (--sync always: durable), random keys among NKEYS (default 10000,
# written first). MODEL: event or threads (--workers 1 either way; THREADS, default 150, pool threads).
# Counts, not times: a busy machine moves them little. Prints one line per event with a count of at least
# 0.01 per response sent (one send per response: the requests answered while counted), then `uptime`. Every process it starts is stopped by its PID.
set -euo pipefail
K=$1; MODEL=$2; OP=$3; CONNS=$4; SECS=${5:-5}
NKEYS=${NKEYS:-10000}; THREADS=${THREADS:-150}
LUA=$(dirname "$(readlink -f "$0")")/lua/kv.lua
D=$(mktemp -d "${TMPDIR:-/tmp}/sys_req.XXXX")
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$K" --listen 127.0.0.1:$PORT --data $D/data --workers 1 --model "$MODEL" --threads "$THREADS" --sync always \
  --access-log off --error-log $D/err.log > $D/out.log 2>&1 &
VP=$!
trap 'kill $VP 2>/dev/null; wait $VP 2>/dev/null; rm -rf $D' EXIT
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
W=$(for p in $(pgrep -P $VP); do [ "$(cat /proc/$p/comm)" = kingx-worker ] && echo $p; done | head -1)
load() {  # wrk -t1 -cCONNS for $1 seconds, GET (putfrac 0) or PUT (putfrac 1)
  wrk -t1 -c"$CONNS" -d"$1"s -s "$LUA" http://127.0.0.1:$PORT/ -- keyp=key- nkeys=$NKEYS size=100 \
    put_prefix=/v1/kv/ putfrac=$2
}
# Every key written once (PUTs in random order leave a few unwritten: the GETs' 404s count as requests).
load 3 1 > /dev/null
answered() { curl -s http://127.0.0.1:$PORT/metrics | awk '/^kingx_http_responses_total\{/ {s += $2} END {print s}'; }
FRAC=0; [ "$OP" = PUT ] && FRAC=1
load 1 $FRAC > /dev/null  # warm-up: the pool's threads each hold a connection
EVENTS=context-switches,sched:sched_wakeup,raw_syscalls:sys_enter
for n in read write readv writev recvfrom sendto recvmsg sendmsg epoll_wait epoll_pwait epoll_ctl poll ppoll \
  futex accept4 close setsockopt clock_gettime; do EVENTS+=",syscalls:sys_enter_$n"; done
# wrk runs a second longer on each side of the count; the requests are those answered while perf counted.
load $((SECS + 2)) $FRAC > /dev/null &
LP=$!
sleep 1
a=$(answered)
perf stat -x, -e "$EVENTS" -p "$W" -o $D/perf.txt -- sleep "$SECS"
b=$(answered)
wait $LP
python3 - "$D/perf.txt" "$((b - a))" "$(basename "$K") $MODEL $OP c=$CONNS" <<'EOF'
import sys
path, n, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
counts = {}
for line in open(path):
    f = line.strip().split(",")
    if len(f) >= 3 and f[0].replace(".", "").isdigit():
        counts[f[2].replace("syscalls:sys_enter_", "").replace("raw_syscalls:sys_enter", "syscalls_all")] = float(f[0])
# Each response is one send(2) or sendmsg(2) in both models (wrk does not pipeline): their count is
# the requests answered inside perf's window, which starts late (perf attaching to every thread) and
# so is smaller than the metrics' count around it.
sent = counts.get("sendto", 0) + counts.get("sendmsg", 0)
print(f"{label}: {int(sent)} responses sent while counted ({n} answered around the count, metrics)")
for name, v in counts.items():
    if v / max(sent, 1) >= 0.01:
        print(f"  {name:18s} {v / max(sent, 1):8.3f} /response")
EOF
echo "  uptime: $(uptime)"
