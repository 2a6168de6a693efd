#!/bin/bash
# System calls of the worker per connection: 500 connections, each one GET of a 100-byte value then
# close, and 200 garbage connections (a bad request then 64 KiB more, then close), strace -c -f on
# the worker. Usage: abuse-sys.sh BIN OUTDIR
BIN=$1; OUT=$2; mkdir -p "$OUT"
D=$(mktemp -d /tmp/kingx-sys-XXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$BIN" --listen 127.0.0.1:$PORT --data $D/data --workers 1 --error-log $D/err.log > $D/out.log 2>&1 &
M=$!
for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:$PORT/readyz && break; sleep 0.1; done
curl -s -X PUT --data-binary @<(head -c 100 /dev/zero | tr '\0' v) http://127.0.0.1:$PORT/v1/kv/small > /dev/null
W=$(pgrep -P $M kingx-worker | head -1); [ -z "$W" ] && W=$(ps -o pid= --ppid $M | while read p; do [ "$(cat /proc/$p/comm)" = kingx-worker ] && echo $p; done | head -1)
strace -c -f -p $W -o $OUT/strace.txt &
S=$!
sleep 1
python3 - $PORT <<'PY'
import socket, sys
port = int(sys.argv[1])
for i in range(500):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"GET /v1/kv/small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    while s.recv(65536): pass
    s.close()
for i in range(200):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"NOT HTTP\r\n\r\n")
    try:
        s.sendall(b"g" * 65536)
        while s.recv(65536): pass
    except OSError: pass
    s.close()
PY
sleep 1; kill -INT $S; wait $S 2>/dev/null; kill $M; wait $M 2>/dev/null; rm -rf $D
cat $OUT/strace.txt
