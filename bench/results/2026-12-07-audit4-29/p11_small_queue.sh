#!/bin/bash
# audit4 probe 11: README "A large value (over 1 MiB) is staged in a file of its own" / "a large upload (a
# body of more than 1 MiB)": eight PUTs of 200 KB at once with --write-queue-bytes 1M (the least -t takes).
# Usage: bash p11_small_queue.sh KINGX_BIN
B=${1:-/work/ref/s29/kingx}
W=$(mktemp -d /tmp/audit4-p11.XXXX)
P=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$B" --listen 127.0.0.1:$P --data "$W/d" --error-log "$W/e.log" --workers 1 --write-queue-bytes 1M & KP=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:$P/readyz >/dev/null && break; sleep 0.1; done
head -c 200000 /dev/urandom > "$W/v"
for i in 1 2 3 4 5 6 7 8; do curl -s -o /dev/null -w '%{http_code} ' -X PUT --data-binary @"$W/v" http://127.0.0.1:$P/v1/kv/w$i & done
wait $(jobs -p | grep -v "^$KP$") 2>/dev/null; echo
curl -s http://127.0.0.1:$P/metrics | grep -E "^kingx_staging_holds_total|^kingx_write_queue_capacity_bytes|^kingx_engine_segments"
echo "segment files: $(ls "$W/d" | grep -c '\.kxd$')"
kill $KP; wait $KP; rm -rf "$W"
