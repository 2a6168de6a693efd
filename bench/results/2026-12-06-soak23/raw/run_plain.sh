#!/bin/bash
# scratch: wall time of 300 sequential PUTs shaped like the crash soak's sizes (rotload.py), one binary
bin=$1
rm -rf rotdata
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$bin --listen 127.0.0.1:$PORT --data rotdata --workers 1 --pid $PWD/kingx.pid > server.log 2>&1 &
for i in $(seq 100); do curl -sf 127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
echo "$(basename $bin) $(python3 rotload.py $PORT 300 1) load $(cut -d' ' -f1 /proc/loadavg)"
kill $(cat kingx.pid)
wait
