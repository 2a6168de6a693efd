#!/bin/bash
# usage: writer_calls.sh KINGX SYNC CONNS OUTDIR
# kingx (1 worker, --sync SYNC) under wrk -cCONNS PUTs of 100 B over 100k keys (warmed first); then, for 3 s:
# perf stat of each writer-process thread's system calls by kind and its context switches (tracepoints, one
# perf per thread), and the writer's fdatasync count (/metrics). Stops what it started by PID.
set -u
BIN=$1; SYNC=$2; C=$3; OUT=$4
mkdir -p "$OUT"
D=$(mktemp -d /tmp/put-wc-XXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
LUA=$(dirname "$0")/../../../lua/kv.lua
"$BIN" --listen 127.0.0.1:$PORT --data $D/data --workers 1 --sync $SYNC --access-log off --max-connections 19000 > $D/log 2>&1 &
KP=$!
for i in $(seq 1 100); do curl -fs http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
timeout 60 wrk -t1 -c100 -d2s -s $LUA http://127.0.0.1:$PORT/ -- keyp=k nkeys=100000 size=100 put_prefix=/v1/kv/k putfrac=1 >/dev/null
timeout 60 wrk -t1 -c$C -d6s -s $LUA http://127.0.0.1:$PORT/ -- keyp=k nkeys=100000 size=100 put_prefix=/v1/kv/k putfrac=1 > $OUT/wc-wrk-$SYNC-c$C.txt &
WP=$!
sleep 1.5
WR=$(pgrep -P $KP kingx-writer | head -1)
EV=raw_syscalls:sys_enter,context-switches,syscalls:sys_enter_fdatasync,syscalls:sys_enter_pwrite64,syscalls:sys_enter_poll,syscalls:sys_enter_ppoll,syscalls:sys_enter_futex,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_pread64,syscalls:sys_enter_fallocate,syscalls:sys_enter_madvise,syscalls:sys_enter_clock_nanosleep,syscalls:sys_enter_nanosleep
PIDS=""
for T in /proc/$WR/task/*; do
  TID=$(basename $T); NAME=$(cat $T/comm)
  perf stat -x, -e $EV -t $TID -o $D/t-$TID-$NAME.txt -- sleep 3 &
  PIDS="$PIDS $!"
done
wait $PIDS
wait $WP
kill -TERM $KP; wait $KP
RPS=$(grep -o "Requests/sec: *[0-9.]*" $OUT/wc-wrk-$SYNC-c$C.txt | grep -o "[0-9.]*$")
{
echo "wrk $RPS req/s; per request over the 3 s window (~$(python3 -c "print(round($RPS*3))") requests):"
for f in $D/t-*.txt; do
  n=$(basename $f .txt); echo "  thread ${n#t-}:"
  awk -F, -v r=$RPS '$1 ~ /^[0-9.]+$/ && $1 > 0 {printf "    %-36s %.4f\n", $3, $1/(r*3)}' $f
done
} | tee $OUT/writer-calls-$SYNC-c$C.txt
rm -rf $D
