#!/usr/bin/env bash
# Audit probe: a sealed segment cut inside its header (its hint gone) must be reported by
# kingx-tool verify (exit 2) and by the server's open (counted, file kept), never removed.
# Usage: p5_tool.sh KINGX_BIN KINGX_TOOL_BIN
K=${1:?kingx}; T=${2:?kingx-tool}; d=$(mktemp -d /tmp/audit-p5.XXXXXX); trap 'rm -rf "$d"' EXIT
port=$((20000 + RANDOM % 20000))
"$K" --listen 127.0.0.1:$port --data "$d/db" --workers 1 --segment-bytes 64K >"$d/srv.log" 2>&1 & sp=$!; sleep 2
python3 - "$port" <<'PY'
import http.client, random, sys
r = random.Random(1); c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for i in range(400):
    c.request("PUT", f"/v1/kv/k{i}", body=r.randbytes(500 + i)); c.getresponse().read()
PY
kill $sp; wait $sp
for v in "0 nohint" "20 nohint" "0 hint" "48 nohint"; do
  set -- $v; rm -rf "$d/c"; cp -a "$d/db" "$d/c"; truncate -s $1 "$d/c/seg-00000004.kxd"; [ $2 = nohint ] && rm -f "$d/c/seg-00000004.hint"
  "$T" --data "$d/c" verify >"$d/o" 2>&1; rc=$?
  echo "seg 4 (sealed) cut to $1 bytes, $2: verify exit $rc: $(grep 'segment 4' "$d/o" | tr '\n' ' ')"
done
rm -rf "$d/c"; cp -a "$d/db" "$d/c"; truncate -s 0 "$d/c/seg-00000004.kxd"; rm -f "$d/c/seg-00000004.hint"
"$K" --listen 127.0.0.1:$port --data "$d/c" --workers 1 --segment-bytes 64K >"$d/srv2.log" 2>&1 & sp=$!; sleep 2
echo "server on the copy cut to 0 (no hint): k300 $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/v1/kv/k300)," \
     "$(curl -s http://127.0.0.1:$port/metrics | grep '^kingx_engine_corruptions_total')," \
     "file kept: $(test -e "$d/c/seg-00000004.kxd" && echo yes || echo NO)"
kill $sp; wait $sp
"$T" --data "$d/c" verify >"$d/o" 2>&1; echo "verify after the server's open: exit $?"
