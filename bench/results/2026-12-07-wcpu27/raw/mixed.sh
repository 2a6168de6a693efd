#!/bin/bash
# mixed.sh LABEL BIN PUTFRAC NKEYS: a kingx on an empty dir, wrk -c100 4 s of PUT/GET over NKEYS keys; the writer's
# fdatasyncs, inode dirtyings and block requests (perf stat, writer process) and the worker's stat calls.
LABEL=$1; BIN=$2; PF=$3; NK=$4
D=$(mktemp -d /tmp/wcpu-mx.XXXX); PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
setsid $BIN --listen 127.0.0.1:$PORT --data $D/data --workers 1 --sync always --access-log off > $D/log 2>&1 &
MP=$!
for i in $(seq 50); do curl -sf 127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
W=""; K=""; for p in $(pgrep -P $MP); do c=$(cat /proc/$p/comm); case $c in *writer*) W=$p;; *worker*) K=$p;; esac; done
wrk -t1 -c100 -d2s -s /work/wt/wcpu/bench/lua/kv.lua http://127.0.0.1:$PORT/ -- keyp=k nkeys=$NK size=100 put_prefix=/v1/kv/ putfrac=1 > /dev/null
perf stat -x, -e syscalls:sys_enter_fdatasync,ext4:ext4_mark_inode_dirty,block:block_rq_issue -p $W -o $D/w.perf &
P1=$!
perf stat -x, -e syscalls:sys_enter_newfstatat,syscalls:sys_enter_statx -p $K -o $D/k.perf &
P2=$!
sleep 0.3
R=$(wrk -t1 -c100 -d4s -s /work/wt/wcpu/bench/lua/kv.lua http://127.0.0.1:$PORT/ -- keyp=k nkeys=$NK size=100 put_prefix=/v1/kv/ putfrac=$PF | grep Requests/sec | awk '{print $2}')
kill -INT $P1 $P2; wait $P1 $P2 2>/dev/null
echo "$LABEL putfrac=$PF nkeys=$NK rps=$R writer: $(grep -v '^#' $D/w.perf | grep . | cut -d, -f1,3 | tr '\n' ' ') worker: $(grep -v '^#' $D/k.perf | grep . | cut -d, -f1,3 | tr '\n' ' ') load=$(cut -d' ' -f1 /proc/loadavg)"
kill -TERM $MP; wait $MP 2>/dev/null; rm -rf $D
