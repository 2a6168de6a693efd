#!/bin/bash
# scratch: syscalls of a sequential PUT load shaped like the crash soak's sizes (rotload.py), one binary
bin=$1; out=$2
rm -rf rotdata
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
strace -f -tt -T -e trace=fdatasync,fsync,ftruncate,openat -o $out $bin --listen 127.0.0.1:$PORT --data rotdata --workers 1 --pid $PWD/kingx.pid > server.log 2>&1 &
for i in $(seq 100); do curl -sf 127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
python3 rotload.py $PORT 300 1
kill $(cat kingx.pid)
wait
