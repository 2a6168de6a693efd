#!/bin/bash
# perf record with DWARF call graphs of one thread of kingx's writer process (by thread name:
# kingx-writer = the loop, kingx-keyview, kingx-compact, ...) for 4 s under a wrk PUT load (100k keys).
# usage: perfthread_dwarf.sh BIN CONNS THREADNAME OUT ; every process it starts is stopped by its PID.
BIN=$1; C=$2; NAME=$3; OUT=$4
D=$(mktemp -d); PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$BIN --listen 127.0.0.1:$PORT --data $D --workers 1 --sync always --access-log off --max-connections 19000 >$D/log 2>&1 &
M=$!
for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
LUA=$(cd "$(dirname "$0")/../../../lua" && pwd)/kv.lua
W="wrk -t1 -c$C --timeout 10s -s $LUA http://127.0.0.1:$PORT/ -- keyp=k nkeys=100000 size=100 put_prefix=/v1/kv/ putfrac=1"
timeout 60 $W -d3s >/dev/null
TID=""
for p in $(pgrep -P $M); do for t in /proc/$p/task/*; do [ "$(cat $t/comm)" = "$NAME" ] && TID=$(basename $t); done; done
perf record -e cpu-clock -F 999 --call-graph dwarf,16384 -t $TID -o $OUT.data >/dev/null 2>&1 &
PP=$!
timeout 60 $W -d4s > $OUT.wrk
kill -INT $PP; wait $PP
kill $M; wait $M
rm -rf $D
perf report -i $OUT.data --children --sort sym -g none --stdio 2>/dev/null | grep -v "^#" | grep . | head -60 > $OUT.children.txt
