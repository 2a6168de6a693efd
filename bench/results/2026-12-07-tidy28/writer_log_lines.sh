#!/bin/bash
# Error log lines a durable PUT load adds (default --log-level info), per binary:
# loadgen PUTs of 200 B over 10,000 keys (overwrites: compaction passes run) for 8 s,
# 16 connections, 2 event workers; the new lines counted by kind (digits folded to N).
# usage: writer_log_lines.sh KINGX [KINGX...]
LOADGEN=${LOADGEN:-/work/ref/s28/loadgen}
for K in "$@"; do
  D=$(mktemp -d /tmp/tidy-wl.XXXX)
  PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  $K --listen 127.0.0.1:$PORT --data $D/data --workers 2 --error-log $D/err.log > $D/out.log 2>&1 &
  KP=$!
  for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.1; done
  sleep 1
  L0=$(wc -l < $D/err.log)
  timeout 30 $LOADGEN --port $PORT --conns 16 --duration 8 --method PUT --path /v1/kv/lg --keys 10000 --body-bytes 200 \
    | grep -o '"requests_ok":[0-9]*'
  sleep 1
  P=$(curl -s http://127.0.0.1:$PORT/metrics | awk '/^kingx_compaction_passes_total/{print $2}')
  echo "$K: $(( $(wc -l < $D/err.log) - L0 )) new error log lines, compaction passes $P"
  tail -n +$((L0+1)) $D/err.log | sed 's/^[0-9\/: ]*//; s/[0-9]\+/N/g' | sort | uniq -c | sort -rn
  kill $KP; wait $KP 2>/dev/null
  rm -rf $D
done
