#!/bin/bash
# usage: writer_profile.sh KINGX CONNS OUTDIR [SYNC]
# kingx (1 worker, --sync always) under wrk -cCONNS PUTs of 100 B over 100k keys (warmed first); perf record
# (cpu-clock, 1999 Hz) of the writer process's threads for 3 s; the report by thread and symbol (self) in
# OUTDIR/writer-profile-cCONNS.txt, with the run's request count. Stops what it started by PID.
set -u
BIN=$1; C=$2; OUT=$3; SYNC=${4:-always}
mkdir -p "$OUT"
D=$(mktemp -d /tmp/put-wp-XXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
LUA=$(dirname "$0")/../../../lua/kv.lua
"$BIN" --listen 127.0.0.1:$PORT --data $D/data --workers 1 --sync $SYNC --access-log off --max-connections 19000 > $D/log 2>&1 &
KP=$!
for i in $(seq 1 100); do curl -fs http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
timeout 60 wrk -t1 -c100 -d2s -s $LUA http://127.0.0.1:$PORT/ -- keyp=k nkeys=100000 size=100 put_prefix=/v1/kv/k putfrac=1 >/dev/null
timeout 60 wrk -t1 -c$C -d6s -s $LUA http://127.0.0.1:$PORT/ -- keyp=k nkeys=100000 size=100 put_prefix=/v1/kv/k putfrac=1 > $D/wrk.txt &
WP=$!
sleep 1.5
WR=$(pgrep -P $KP kingx-writer | head -1)
perf record -q -F 1999 -g -p $WR -o $D/w.data -- sleep 3 2>/dev/null
wait $WP
kill -TERM $KP; wait $KP
RPS=$(grep -o "Requests/sec: *[0-9.]*" $D/wrk.txt | grep -o "[0-9.]*$")
{
  echo "wrk $RPS req/s, ~$(python3 -c "print(round($RPS*3))") requests in the 3 s window; uptime: $(uptime)"
  perf report -i $D/w.data --no-children --sort comm,sym --stdio -q -g none 2>/dev/null | grep "%" | head -60
} > $OUT/writer-profile-$SYNC-c$C.txt
rm -rf $D
