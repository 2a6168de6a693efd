#!/bin/bash
# callgrind_nginx_put.sh CONNS: user-space instructions (callgrind Ir) per PUT of nginx's PUT-discard (the body
# read and discarded, `return 200` of 100 B: bench/compare's nginx-return-w1), the floor bench/callgrind_put.sh's
# worker Ir per durable PUT is set beside. nginx runs as one process (master_process off) under callgrind with
# bench/harness/peers.py's configuration; wrk -t1 -cCONNS sends PUTs of 100 B (bench/lua/kv.lua) to 1M keys:
# counters zeroed after a 2 s warm-up, then 6 s of load, dumped; Ir / requests wrk completed in those 6 s.
# Under callgrind nginx runs ~50x slower: compare with callgrind_put.sh's figures, not with timed runs. With
# KEEP=DIR the dump is kept there (DIR/nginx.out). Stops only the process it started.
set -euo pipefail
CONNS=$1
B=$(dirname "$(readlink -f "$0")")
D=$(mktemp -d "${TMPDIR:-/tmp}/cg_nginx.XXXX"); chmod 755 "$D"
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
python3 - "$D" "$PORT" "$B" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from harness import peers
conf = peers.nginx_conf(sys.argv[1], int(sys.argv[2]), 1, False).replace("master_process on;", "master_process off;")
open(sys.argv[1] + "/nginx.conf", "w").write(conf)
PY
mkdir -p "$D/www"
valgrind --tool=callgrind --callgrind-out-file=$D/cg.%p nginx -p "$D" -c "$D/nginx.conf" -e "$D/error.log" \
  > $D/out.log 2>&1 &
VP=$!
cleanup() { kill $VP 2>/dev/null || true; wait $VP 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
for i in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/r" >/dev/null && break; sleep 0.5; done
run() {  # seconds -> requests completed
  wrk -t1 -c"$CONNS" -d$1s -s "$B/lua/kv.lua" http://127.0.0.1:$PORT/ -- keyp=key- nkeys=1000000 size=100 \
    put_prefix=/r/ putfrac=1 | awk '/requests in/ {print $1}'; }
run 2 > /dev/null
callgrind_control -z $VP > /dev/null
n=$(run 6)
callgrind_control -d $VP > /dev/null
sleep 2
IR=$(awk 'FNR == 1 {seen = 0} !seen && /^(summary|totals):/ {t += $2; seen = 1} END {print t + 0}' $D/cg.$VP.* 2>/dev/null)
python3 -c "print('nginx put-discard c=$CONNS requests $n Ir/request %.0f load $(cut -d' ' -f1 /proc/loadavg)' % ($IR / $n))"
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cp $D/cg.$VP.1 "$KEEP/nginx.out" 2>/dev/null || cp $D/cg.$VP "$KEEP/nginx.out"; fi
