#!/bin/bash
# audit3 probe 7: outside clients against a server started here (127.0.0.1, ephemeral port).
#  - README "Key spelling": "clients that follow redirects (curl -L ...) repeat the request there, method and body
#    included" -- the README's own two curl lines, as written;
#  - README "Pipelined requests": pipelined GETs are each answered -- h2load --h1 -m 16 (16 requests in flight
#    per connection), 100 connections, every response 2xx;
#  - README API: HEAD gives the GET's headers -- curl -I against curl -i on the same key.
# Usage: KINGX_BIN=... bash p7_tools.sh [extra kingx flags]
set -u
B=${KINGX_BIN:?}
D=$(mktemp -d /tmp/audit3-p7-XXXXXX)
P=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$B" --listen 127.0.0.1:$P --data $D/data --workers 1 "$@" >$D/out 2>&1 &
PID=$!
for i in $(seq 100); do curl -fs http://127.0.0.1:$P/readyz >/dev/null && break; sleep 0.1; done
U=http://127.0.0.1:$P
echo "== curl, the README's lines"
curl -s -o /dev/null -w '%{http_code} %{redirect_url}\n' -X PUT --data-binary v "$U/v1/kv/dir%2Fcaf%c3%a9"
curl -s -o /dev/null -w '%{http_code} %{url_effective}\n' -L -X PUT --data-binary v "$U/v1/kv/dir%2Fcaf%c3%a9"
curl -s -w ' %{http_code}\n' "$U/v1/kv/dir/caf%C3%A9"
echo "== HEAD vs GET headers"
curl -s -X PUT --data-binary @/etc/os-release -H 'Content-Type: text/plain' $U/v1/kv/os -o /dev/null
diff <(curl -s -D - -o /dev/null $U/v1/kv/os | grep -vi '^date:\|^x-request-id:' | tr -d '\r') \
     <(curl -s -I $U/v1/kv/os | grep -vi '^date:\|^x-request-id:' | tr -d '\r') && echo "HEAD headers = GET headers"
echo "== h2load --h1 -m 16 (pipelined), 100 connections, 20000 GETs"
curl -s -X PUT --data-binary "$(head -c 100 /dev/zero | tr '\0' v)" $U/v1/kv/h2 -o /dev/null
timeout 60 h2load --h1 -n 20000 -c 100 -m 16 $U/v1/kv/h2 2>&1 | grep -E "requests:|status codes:|finished in"
echo "== h2load --h1 -m 16, 8 connections, 2000 GETs of a 1 MiB compressible value"
python3 -c 'import sys; sys.stdout.write("abcdefgh" * 131072)' > $D/big
curl -s -X PUT --data-binary @$D/big $U/v1/kv/big -o /dev/null
timeout 60 h2load --h1 -n 2000 -c 8 -m 16 $U/v1/kv/big 2>&1 | grep -E "requests:|status codes:|traffic:"
kill -TERM $PID; wait $PID; echo "exit $?"
rm -rf $D
