#!/bin/bash
# put_wait.sh KINGX: a 100-byte PUT's answer while 3,000 slowhttptest -B uploads hold the body budget
K=$1
D=$(mktemp -d /tmp/abuse20/pw.XXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$K --listen 127.0.0.1:$PORT --data $D/data --workers 1 --error-log $D/err.log --model event > $D/out.log 2>&1 &
KP=$!
for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.1; done
echo "before: $(curl -s -o /dev/null -w '%{http_code} %{time_total}s' -X PUT --data-binary 0123456789 http://127.0.0.1:$PORT/v1/kv/legit0)"
slowhttptest -l 120 -p 3 -r 1000 -B -c 3000 -i 5 -x 24 -s 1048576 -t PUT -u http://127.0.0.1:$PORT/v1/kv/slow-body > $D/sht.log 2>&1 &
SP=$!
sleep 8
echo "during: $(curl -s -o $D/body -w '%{http_code} %{time_total}s' -m 150 -X PUT --data-binary 0123456789 http://127.0.0.1:$PORT/v1/kv/legit1) $(head -c 200 $D/body)"
echo "GET during: $(curl -s -o /dev/null -w '%{http_code} %{time_total}s' http://127.0.0.1:$PORT/v1/kv/legit0)"
kill $SP; wait $SP 2>/dev/null
kill $KP; wait $KP
rm -rf $D
