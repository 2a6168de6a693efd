#!/bin/sh
# usage: compact_check.sh LABEL BIN ROUNDS
L=$1; B=$2; N=$3
D=/tmp/putreg/cc-$L; rm -rf $D; mkdir -p $D; cp -r ${TEMPLATE:-/tmp/putreg/tpl/template-data} $D/data
P=$(python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])")
$B --listen 127.0.0.1:$P --data $D/data --workers 1 --sync always --access-log off --max-connections 19000 --log-level debug > $D/kingx.log 2>&1 &
KP=$!
for i in $(seq 1 120); do curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:$P/readyz | grep -q 200 && break; sleep 1; done
curl -s http://127.0.0.1:$P/metrics | grep -E "^kingx_(compaction_[a-z_]*total|engine_(live|dead)_bytes|writer_records_total|writer_batches_total)" > $D/m0.txt
for r in $(seq 1 $N); do
  wrk -t1 -c1000 -d4s --timeout 10s -s /work/wt/putreg/bench/lua/kv.lua http://127.0.0.1:$P/ -- keyp=k nkeys=1000000 size=100 put_prefix=/v1/kv/ putfrac=1 > $D/wrk$r.txt 2>&1
  curl -s http://127.0.0.1:$P/metrics | grep -E "^kingx_(compaction_[a-z_]*total|engine_(live|dead)_bytes|writer_records_total|writer_batches_total)" > $D/m$r.txt
done
kill $KP; wait $KP 2>/dev/null
echo "== $L"; paste $D/m0.txt $D/m$N.txt | awk '{print $1, $2, $4}'
grep -i "compaction\|stall\|rotat\|seal" $D/kingx.log | grep -v "^$" | cut -c1-250 | head -30
