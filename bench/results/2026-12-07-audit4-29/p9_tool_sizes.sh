#!/bin/bash
# audit4 probe 9: kingx-tool put/get of values on both sides of every size threshold (compression at 256 B,
# the 1 MiB large-value path), random and compressible; then kingx serves each with its exact bytes and
# the default Content-Type, and kingx-tool get of what the server wrote gives its exact bytes.
# Usage: bash p9_tool_sizes.sh KINGX_TOOL KINGX
T=${1:-/work/ref/s29/kingx-tool}; B=${2:-/work/ref/s29/kingx}
W=$(mktemp -d /tmp/audit4-p9.XXXX); cd "$W"
fails=0; n=0
for size in 0 1 255 256 257 65536 1048575 1048576 1048577 3145728; do
  for kind in rand comp; do
    if [ $kind = rand ]; then head -c $size /dev/urandom > v.$size.$kind; else yes abcdefgh | head -c $size > v.$size.$kind; fi
    $T --data db put "t/$size/$kind" v.$size.$kind > /dev/null || { echo "put $size $kind rc=$?"; fails=$((fails+1)); }
    $T --data db get "t/$size/$kind" > got || true
    cmp -s got v.$size.$kind || { echo "tool get $size $kind differs"; fails=$((fails+1)); }
    n=$((n+1))
  done
done
P=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$B --listen 127.0.0.1:$P --data db --error-log e.log --workers 1 & KP=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:$P/readyz >/dev/null && break; sleep 0.1; done
for f in v.*; do
  size=${f#v.}; kind=${size#*.}; size=${size%%.*}
  ct=$(curl -s -o got -w '%{content_type} %{http_code}' "http://127.0.0.1:$P/v1/kv/t/$size/$kind")
  cmp -s got $f && [ "$ct" = "application/octet-stream 200" ] || { echo "server GET $size $kind: $ct, bytes differ or type"; fails=$((fails+1)); }
  curl -s -o /dev/null -X PUT --data-binary @$f -H 'Content-Type: text/x-s' "http://127.0.0.1:$P/v1/kv/s/$size/$kind"
done
kill $KP; wait $KP
for f in v.*; do
  size=${f#v.}; kind=${size#*.}; size=${size%%.*}
  $T --data db get "s/$size/$kind" > got; cmp -s got $f || { echo "tool get of the server's s/$size/$kind differs"; fails=$((fails+1)); }
done
$T --data db verify | tail -1
echo "RESULT $n values each way, $fails failures"
cd /; rm -rf "$W"
