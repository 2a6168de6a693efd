#!/bin/bash
# Every process it starts (kingx, wrk, strace/perf) is stopped by its PID before it returns.
# usage: straceput.sh BIN CONNS OUT  -- syscalls of the worker per answered PUT (strace -c), --sync always
BIN=$1; C=$2; OUT=$3
D=$(mktemp -d); PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$BIN --listen 127.0.0.1:$PORT --data $D --workers 1 --sync always --access-log off --max-connections 19000 >$D/log 2>&1 &
M=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
LUA=$(cd "$(dirname "$0")/../../../lua" && pwd)/kv.lua
W="wrk -t1 -c$C --timeout 10s -s $LUA http://127.0.0.1:$PORT/ -- keyp=k nkeys=100000 size=100 put_prefix=/v1/kv/ putfrac=1"
timeout 20 $W -d2s >/dev/null
WK=$(for p in $(pgrep -P $M); do grep -q worker /proc/$p/comm && echo $p; done)
strace -c -f -o $OUT.strace -p $WK & SP=$!
sleep 1
timeout 30 $W -d4s > $OUT.wrk
kill -INT $SP; wait $SP
kill $M; wait $M
rm -rf $D
echo "\$ $W -d4s (strace -c -f -p <worker>)" > $OUT.cmd
