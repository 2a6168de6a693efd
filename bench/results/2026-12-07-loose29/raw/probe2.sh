#!/bin/bash
# USR1 reopen with the access log replaced by a FIFO without a reader. $1 = kingx, $2 = model
BIN=$1; MODEL=$2; D=$(mktemp -d /tmp/loose-p2.XXXX); PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
mkdir $D/data
$BIN --listen 127.0.0.1:$PORT --data $D/data --error-log $D/error.log --access-log $D/access.log --pid $D/pid --workers 1 --model $MODEL &
P=$!; sleep 2; curl -s -m 2 -o /dev/null -w 'readyz %{http_code}\n' http://127.0.0.1:$PORT/readyz
rm $D/access.log; mkfifo $D/access.log
kill -USR1 $P; sleep 2
curl -s -m 3 -o /dev/null -w 'healthz %{http_code}\n' http://127.0.0.1:$PORT/healthz; echo
for c in $(pgrep -P $P); do echo "$c $(cat /proc/$c/comm) $(cat /proc/$c/wchan)"; for t in /proc/$c/task/*; do echo "  task $(basename $t) $(cat $t/wchan)"; done; done
kill -TERM $P; sleep 3; if kill -0 $P 2>/dev/null; then echo "still alive after TERM: killing"; for c in $(pgrep -P $P); do kill -KILL $c; done; kill -KILL $P; fi
wait $P 2>/dev/null
rm -rf $D
