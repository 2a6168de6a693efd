#!/bin/bash
# callgrind_put.sh KINGX SYNC CONNS: user-space instructions (callgrind Ir) per PUT of one kingx's event worker and
# of its writer process (all its threads), PUTs of 100 B to random keys of TEMPLATE's NKEYS (default 1M of
# /tmp/writer23/tmpl) by wrk -t1 -cCONNS: counters zeroed after a 2 s warm-up, then 6 s of load, dumped;
# Ir / writer records over those 6 s. Under callgrind the server runs ~50x slower, so the rate and the
# batches are not production's: compare binaries with each other, in the same run. With KEEP=DIR the dumps are
# kept there (DIR/worker.out, DIR/writer.out*) for callgrind_annotate. ARGS: more kingx arguments (e.g.
# ARGS="--model threads": the thread pool's worker process, all its threads). bench/callgrind_nginx_put.sh
# measures nginx's PUT-discard the same way, the floor to set the worker's figure beside.
set -euo pipefail
K=$1; SYNC=$2; CONNS=$3
TEMPLATE=${TEMPLATE:-/tmp/writer23/tmpl}; NKEYS=${NKEYS:-1000000}
[ -d "$TEMPLATE" ] || { echo "$0: no template database $TEMPLATE: make it with fill_db --data $TEMPLATE --keys 1000000 --value-bytes 100 (build-release/bench/fill_db), or set TEMPLATE" >&2; exit 2; }
LUA=$(dirname "$(readlink -f "$0")")/lua/kv.lua
D=$(mktemp -d "${TMPDIR:-/tmp}/cg_put.XXXX"); cp -r "$TEMPLATE" "$D/data"
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=$D/cg.%p "$K" --listen 127.0.0.1:$PORT \
  --data $D/data --workers 1 --sync "$SYNC" --access-log off --error-log $D/err.log ${ARGS:-} > $D/out.log 2>&1 &
VP=$!
for i in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/v1/kv/?limit=1" >/dev/null && break; sleep 0.5; done
child() { for p in $(pgrep -P $VP); do if [ "$(cat /proc/$p/comm)" = "$1" ]; then echo $p; fi; done | head -1; }
W=$(child kingx-worker); R=$(child kingx-writer)
recs() { curl -s http://127.0.0.1:$PORT/metrics | awk '$1 == "kingx_writer_records_total" {print $2}'; }
wrk -t1 -c"$CONNS" -d2s -s "$LUA" http://127.0.0.1:$PORT/ -- keyp=key- nkeys=$NKEYS size=100 put_prefix=/v1/kv/ \
  putfrac=1 > /dev/null
callgrind_control -z $W > /dev/null; callgrind_control -z $R > /dev/null
a=$(recs)
wrk -t1 -c"$CONNS" -d6s -s "$LUA" http://127.0.0.1:$PORT/ -- keyp=key- nkeys=$NKEYS size=100 put_prefix=/v1/kv/ \
  putfrac=1 > /dev/null
b=$(recs)
callgrind_control -d $W > /dev/null; callgrind_control -d $R > /dev/null
sleep 2
ir() {  # the Ir of the dump (cg.PID.1; its threads' parts, if separate, summed)
  awk 'FNR == 1 {seen = 0} !seen && /^(summary|totals):/ {t += $2; seen = 1} END {print t + 0}' $D/cg.$1.* \
    2>/dev/null || echo 0; }
IW=$(ir $W); IR=$(ir $R)
python3 -c "
n = float($b) - float($a)
print('$(basename $K) sync $SYNC c=$CONNS puts %d worker_Ir/put %.0f writer_Ir/put %.0f load $(cut -d' ' -f1 /proc/loadavg)'
      % (n, $IW / n, $IR / n))"
if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP"
  for f in $D/cg.$W.*; do cp "$f" "$KEEP/worker.out${f#$D/cg.$W.1}"; done
  for f in $D/cg.$R.*; do cp "$f" "$KEEP/writer.out${f#$D/cg.$R.1}"; done
fi
kill $VP; wait $VP 2>/dev/null || true
rm -rf $D
