#!/bin/bash
# Every process it starts (kingx, wrk, strace/perf) is stopped by its PID before it returns.
# usage: perfput.sh BIN CONNS SYNC OUTPREFIX
BIN=$1; C=$2; SYNC=$3; OUT=$4
D=$(mktemp -d); PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$BIN --listen 127.0.0.1:$PORT --data $D --workers 1 --sync $SYNC --access-log off --max-connections 19000 >$D/log 2>&1 &
M=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
LUA=$(cd "$(dirname "$0")/../../../lua" && pwd)/kv.lua
W="wrk -t1 -c$C --timeout 10s -s $LUA http://127.0.0.1:$PORT/ -- keyp=k nkeys=100000 size=100 put_prefix=/v1/kv/ putfrac=1"
timeout 20 $W -d2s >/dev/null
KIDS=$(pgrep -P $M | tr '\n' ,); KIDS=${KIDS%,}
for p in $(pgrep -P $M); do echo "$p $(cat /proc/$p/comm)"; done > $OUT.pids
perf record -e cpu-clock -F 2999 -g -p $KIDS -o $OUT.data >/dev/null 2>&1 &
PP=$!
timeout 30 $W -d5s > $OUT.wrk
kill -INT $PP; wait $PP
kill $M; wait $M
rm -rf $D
