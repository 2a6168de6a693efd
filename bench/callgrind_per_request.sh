#!/bin/bash
# Instructions (callgrind Ir) of one kingx worker per request, a guard for changes to the accept and
# connection paths: counters zeroed after a 2 s wrk warm-up, then wrk -t1 -c8 for 6 s of GETs of a 100 B
# value (close: `Connection: close`), dumped, Ir / 2xx answered, and clock readings (clock_gettime calls)
# per 2xx answered.
# usage: bench/callgrind_per_request.sh KINGX keepalive|close [MODEL_ARGS...]   (default: --model event)
K=$1; MODE=$2; shift 2
[ $# -gt 0 ] || set -- --model event
D=$(mktemp -d)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=$D/cg.%p $K --listen 127.0.0.1:$PORT --data $D/data --workers 1 --error-log $D/err.log "$@" > $D/out.log 2>&1 &
VP=$!
for i in $(seq 600); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
curl -s -X PUT --data-binary @<(head -c 100 /dev/zero | tr '\0' v) http://127.0.0.1:$PORT/v1/kv/small
W=$(for p in $(pgrep -P $VP); do [ "$(cat /proc/$p/comm)" = kingx-worker ] && echo $p; done | head -1)
H=(); [ $MODE = close ] && H=(-H "Connection: close")
wrk -t1 -c8 -d2s "${H[@]}" http://127.0.0.1:$PORT/v1/kv/small > /dev/null
ok() { curl -s http://127.0.0.1:$PORT/metrics | awk -F' ' '/^kingx_http_responses_total\{class="2xx"\}/{print $2}'; }
callgrind_control -z $W > /dev/null
a=$(ok); o0=$(curl -s http://127.0.0.1:$PORT/metrics | awk "/^kingx_http_connections_opened_total/{print \$2}")
wrk -t1 -c8 -d6s "${H[@]}" http://127.0.0.1:$PORT/v1/kv/small > /dev/null
b=$(ok); o1=$(curl -s http://127.0.0.1:$PORT/metrics | awk "/^kingx_http_connections_opened_total/{print \$2}")
callgrind_control -d $W > /dev/null
# The dump is written by the worker at its next client-request check: wait for its summary line.
IR=
for i in $(seq 150); do
  F=$(ls -t $D/cg.$W* 2>/dev/null | head -1)
  IR=$(grep -h "^summary:\|^totals:" $F 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$IR" ] && break; sleep 0.2
done
[ -n "$IR" ] || { echo "$0: worker $W wrote no callgrind dump with a summary in 30 s" >&2; kill $VP; exit 1; }
# Clock readings (vDSO clock_gettime calls: no system call shows them), per request.
CLK=$(python3 - "$(dirname "$0")/profile.py" "$F" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("bench_profile", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
print(m.calls_to(sys.argv[2], "clock_gettime"))
PY
)
echo "$(basename $K) $MODE requests $((b-a)) Ir $IR connections $((o1-o0)) Ir/request $(python3 -c "print(round($IR/($b-$a)))") clock_reads/request $(python3 -c "print(round(${CLK:-0}/($b-$a), 2))") load $(cut -d' ' -f1 /proc/loadavg)"
kill $VP; wait $VP 2>/dev/null
rm -rf $D
