#!/bin/bash
# Run inside a private network namespace (unshare -n, lo up), as root: [DATA=DIR] acks.sh KINGX|nginx CONNS OUT
# (DIR: a copy of a fill_db 1M-key directory, default /tmp/wake-data).
# In a netns: server (kingx ref or nginx) + wrk GET c=$2 for 6 s; at 5 s, ss -tin: per side segs_out - data_segs_out
K=$1; C=$2; OUT=$3
BENCH=$(cd "$(dirname "$0")/../../../.." && pwd)
PORT=18080
D=$(mktemp -d /tmp/wake-acks.XXXX)
if [ "$K" = nginx ]; then
  python3 - "$BENCH" "$D" $PORT <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from harness import peers
d, port = sys.argv[2], int(sys.argv[3])
open(f"{d}/nginx.conf", "w").write(peers.nginx_conf(d, port, 1, False).replace("master_process on;", "master_process off;"))
PY
  nginx -p $D -c $D/nginx.conf -e $D/error.log > $D/out.log 2>&1 & KP=$!; READY=/r; GETP=/r/
else
  "$K" --listen 127.0.0.1:$PORT --data ${DATA:-/tmp/wake-data} --workers 1 --error-log $D/err.log > $D/out.log 2>&1 & KP=$!; READY=/readyz; GETP=/v1/kv/
fi
for i in $(seq 600); do curl -sf http://127.0.0.1:$PORT$READY >/dev/null && break; sleep 0.2; done
timeout 30 wrk -t1 -c$C -d6s --timeout 10s -s $BENCH/lua/kv.lua http://127.0.0.1:$PORT/ -- get_prefix=$GETP keyp=key- nkeys=1000000 putfrac=0 > $OUT.wrk 2>&1 &
WP=$!
sleep 5
ss -tin > $OUT.ss
wait $WP
kill $KP; wait $KP 2>/dev/null
rm -rf $D
python3 "$(dirname "$0")/acks_sum.py" $OUT.ss $PORT
