#!/bin/bash
# Where one kingx worker's CPU per GET goes at a given connection count (a native run: this VM has no
# hardware counters, so what is counted is CPU time, system calls and a cpu-clock profile).
# A server (1 worker) on a copy-free data directory of 100 B keys key-0..key-(N-1) (bench/fill_db --keys N), wrk -t1 -cC
# of uniform GETs (bench/lua/kv.lua) for WARM+SECS s; over the last SECS s: the worker's user and system
# CPU (/proc/PID/stat), its answers (its write, writev and sendto calls: one per answer under a closed-loop load), its system calls by name (perf stat on the
# syscalls tracepoints), and, with PROFILE=1, a perf record -e cpu-clock -g of the worker (perf.data).
# KINGX=nginx measures nginx `return 200` (bench/harness/peers.py's configuration, one process:
# master_process off) the same way, on the same GET paths (DATA_DIR and NKEYS are then ignored).
# usage: bench/get_conns_profile.sh KINGX|nginx DATA_DIR NKEYS CONNS OUTDIR [SECS=5] [WARM=2] [TAG]
set -u
K=$1; DATA=$2; NKEYS=$3; C=$4; OUT=$5; SECS=${6:-5}; WARM=${7:-2}
BENCH=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
TAG=${8:-$(basename "$K")}-c$C
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
D=$(mktemp -d)
if [ "$K" = nginx ]; then
  python3 - "$BENCH" "$D" $PORT <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from harness import peers
d, port = sys.argv[2], int(sys.argv[3])
with open(f"{d}/nginx.conf", "w") as f:
    f.write(peers.nginx_conf(d, port, 1, False).replace("master_process on;", "master_process off;"))
PY
  nginx -p $D -c $D/nginx.conf -e $D/error.log > $D/out.log 2>&1 &
  KP=$!; W=$KP; READY=/r; GETP=/r/
else
  "$K" --listen 127.0.0.1:$PORT --data "$DATA" --workers 1 --error-log $D/err.log > $D/out.log 2>&1 &
  KP=$!; READY=/readyz; GETP=/v1/kv/
fi
for i in $(seq 600); do curl -sf http://127.0.0.1:$PORT$READY >/dev/null && break; sleep 0.2; done
[ "$K" = nginx ] || W=$(for p in $(pgrep -P $KP); do [ "$(cat /proc/$p/comm)" = kingx-worker ] && echo $p; done | head -1)
cpu() { awk '{print $14+$15}' /proc/$W/stat; }  # utime+stime, clock ticks
timeout $((WARM+SECS+30)) wrk -t1 -c$C -d$((WARM+SECS+1))s --timeout 10s -s "$BENCH/lua/kv.lua" \
  http://127.0.0.1:$PORT/ -- get_prefix=$GETP keyp=key- nkeys=$NKEYS putfrac=0 > $OUT/$TAG.wrk.txt 2>&1 &
WP=$!
sleep $WARM
c0=$(cpu); u0=$(awk '{print $14}' /proc/$W/stat)
EV=syscalls:sys_enter_epoll_wait,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_accept4,syscalls:sys_enter_epoll_ctl,task-clock,context-switches,page-faults
if [ "${PROFILE:-0}" = 1 ]; then
  perf record -q -e cpu-clock -g -p $W -o $OUT/$TAG.perf.data -- sleep $SECS 2>/dev/null &
  PR=$!
fi
perf stat -x, -e $EV -p $W -o $OUT/$TAG.perfstat.txt -- sleep $SECS
[ "${PROFILE:-0}" = 1 ] && wait $PR
c1=$(cpu); u1=$(awk '{print $14}' /proc/$W/stat)
wait $WP
kill $KP; wait $KP 2>/dev/null
HZ=$(getconf CLK_TCK)
python3 - "$OUT/$TAG.perfstat.txt" $((c1-c0)) $((u1-u0)) $HZ "$TAG" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY' | tee -a $OUT/summary.txt
import json, sys
f, cpu, user, hz, tag, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
ev = {}
for line in open(f):
    p = line.strip().split(",")
    if len(p) > 3 and p[0] and p[0][0].isdigit():
        ev[p[2].split(":")[-1]] = float(p[0])
n = int(ev.get('sys_enter_write', 0) + ev.get('sys_enter_writev', 0) + ev.get('sys_enter_sendto', 0))
w = [l for l in open(f.replace('.perfstat.txt', '.wrk.txt')) if l.startswith('WRKJSON ')]
non2xx = json.loads(w[0][8:])['err_status'] if w else 'no-wrk-summary'
per = lambda k: ev.get(k, 0) / max(n, 1)
reads = ev.get("sys_enter_read", 0)
print(f"{tag} gets {n} cpu_us/get {cpu/hz*1e6/max(n,1):.2f} user_us/get {user/hz*1e6/max(n,1):.2f} "
      f"sys_us/get {(cpu-user)/hz*1e6/max(n,1):.2f} epoll_wait/get {per('sys_enter_epoll_wait'):.4f} "
      f"read/get {per('sys_enter_read') + per('sys_enter_recvfrom'):.3f} write/get {per('sys_enter_write') + per('sys_enter_sendto'):.3f} writev/get {per('sys_enter_writev'):.3f} "
      f"epoll_ctl/get {per('sys_enter_epoll_ctl'):.4f} gets/epoll_wait {n/max(ev.get('sys_enter_epoll_wait',1),1):.1f} cs/get {per('context-switches'):.4f} non2xx {non2xx} load {load}")
PY
rm -rf $D
