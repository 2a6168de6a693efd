#!/bin/bash
# Where a durable PUT's CPU goes: one kingx (1 worker), wrk PUT load over KEYS keys, then
# for SECS seconds perf record (cpu-clock, call graphs) of the master and all its children,
# and their user/system CPU from /proc (per thread) before and after.
# Every process it starts (kingx, wrk, perf) is stopped by its PID before it returns.
# usage: perfput.sh BIN CONNS SYNC OUTPREFIX [KEYS] [SECS]
BIN=$1; C=$2; SYNC=$3; OUT=$4; KEYS=${5:-100000}; SECS=${6:-5}
D=$(mktemp -d); PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$BIN --listen 127.0.0.1:$PORT --data $D --workers 1 --sync $SYNC --access-log off --max-connections 19000 >$D/log 2>&1 &
M=$!
for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
LUA=$(cd "$(dirname "$0")/../../../lua" && pwd)/kv.lua
W="wrk -t1 -c$C --timeout 10s -s $LUA http://127.0.0.1:$PORT/ -- keyp=k nkeys=$KEYS size=100 put_prefix=/v1/kv/ putfrac=1"
timeout 60 $W -d3s >/dev/null
PIDS="$M $(pgrep -P $M | tr '\n' ' ')"
snap() { for p in $PIDS; do for t in /proc/$p/task/*; do
  echo "$p $(cat /proc/$p/comm) $(cat $t/comm) $(cut -d')' -f2 $t/stat | awk '{print $12, $13}')"; done; done; }
for p in $PIDS; do echo "$p $(cat /proc/$p/comm)"; done > $OUT.pids
uptime > $OUT.uptime
snap > $OUT.cpu0
perf record -e cpu-clock -F 1999 -g -p $(echo $PIDS | tr ' ' ,) -o $OUT.data >/dev/null 2>&1 &
PP=$!
timeout $((SECS + 60)) $W -d${SECS}s > $OUT.wrk
snap > $OUT.cpu1
kill -INT $PP; wait $PP
curl -s http://127.0.0.1:$PORT/metrics | grep -E '^kingx_(writer|http_requests)' > $OUT.metrics
uptime >> $OUT.uptime
kill $M; wait $M
rm -rf $D
