#!/bin/bash
# strace_flood.sh KINGX MODEL OUT: syscalls of the worker (all threads) for 4 s of a 64-connection garbage flood alone
K=$1; M=$2; O=$3
D=$(mktemp -d /tmp/abuse20/st.XXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$K --listen 127.0.0.1:$PORT --data $D/data --workers 1 --error-log $D/err.log --model $M --threads 64 > $D/out.log 2>&1 &
KP=$!
for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.1; done
W=$(pgrep -P $KP -x kingx-worker | head -1)
python3 /work/wt/abuse/bench/abuse_clients.py garbage --port $PORT --conns 64 --seconds 30 > $D/flood.log 2>&1 &
FP=$!
sleep 3
o0=$(curl -s http://127.0.0.1:$PORT/metrics | awk '/^kingx_http_connections_opened_total/{print $2}')
timeout -s INT 4 strace -f -c -p $W -o $O 2>/dev/null
o1=$(curl -s http://127.0.0.1:$PORT/metrics | awk '/^kingx_http_connections_opened_total/{print $2}')
echo "connections opened in the window: $((o1-o0))" >> $O
kill $FP; wait $FP 2>/dev/null
kill $KP; wait $KP
rm -rf $D
