#!/bin/bash
# Reproduce: log paths that are FIFOs without a reader. $1 = kingx binary, $2 = model
BIN=$1; MODEL=$2; D=$(mktemp -d /tmp/loose-p1.XXXX); PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
mkdir $D/data
echo "== case A: access log FIFO without reader, start ($MODEL)"
mkfifo $D/access.fifo
timeout 8 $BIN --listen 127.0.0.1:$PORT --data $D/data --error-log $D/error.log --access-log $D/access.fifo --pid $D/pid --workers 1 --model $MODEL &
P=$!; sleep 4
echo "readyz: $(curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/readyz)"
ps -o pid,stat,wchan:20,comm --ppid $P 2>/dev/null
kill -TERM $P 2>/dev/null; wait $P; echo "exit $?"
tail -3 $D/error.log
echo "== case B: error log FIFO without reader, start"
mkfifo $D/error.fifo
timeout 5 $BIN --listen 127.0.0.1:$PORT --data $D/data --error-log $D/error.fifo --pid $D/pid --workers 1 --model $MODEL
echo "exit $? (124 = timeout: hung)"
echo "== case C: HUP after the access log became a FIFO without reader"
rm -f $D/access.log
$BIN --listen 127.0.0.1:$PORT --data $D/data --error-log $D/error2.log --access-log $D/access.log --pid $D/pid --workers 1 --model $MODEL &
P=$!; sleep 2; curl -s -m 2 -o /dev/null -w 'readyz %{http_code}\n' http://127.0.0.1:$PORT/readyz
rm $D/access.log; mkfifo $D/access.log
kill -HUP $P; sleep 2
echo "master wchan: $(cat /proc/$P/wchan) stat: $(awk '{print $3}' /proc/$P/stat)"
tail -2 $D/error2.log
echo "== case D: USR1 with the access log a FIFO without reader"
kill -USR1 $P; sleep 2
curl -s -m 3 -o /dev/null -w 'healthz %{http_code}\n' http://127.0.0.1:$PORT/healthz || echo "healthz: no answer"
ps -o pid,stat,wchan:20,comm --ppid $P
kill -TERM $P; sleep 3; kill -0 $P 2>/dev/null && { echo "master still alive after TERM: killing group"; pkill -KILL -P $P; kill -KILL $P; }
wait $P 2>/dev/null
rm -rf $D
