#!/bin/bash
# User-space instructions per request of the kingx worker (perf stat -e instructions:u on the worker),
# one connection per request (wrk -H "Connection: close") and keep-alive, binaries interleaved.
# Usage: instr.sh ROUNDS name=BIN ...
rounds=$1; shift
for r in $(seq $rounds); do
  for mode in close keepalive; do
    for spec in "$@"; do
      name=${spec%%=*}; bin=${spec#*=}
      d=$(mktemp -d /tmp/abuse19-instr.XXXX)
      port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
      $bin --listen 127.0.0.1:$port --data $d/data --workers 1 --error-log $d/err.log > $d/out 2>&1 &
      kp=$!
      for i in $(seq 100); do curl -sf 127.0.0.1:$port/readyz > /dev/null && break; sleep 0.1; done
      curl -s -X PUT --data-binary "$(head -c 100 /dev/zero | tr '\0' v)" 127.0.0.1:$port/v1/kv/small > /dev/null
      w=$(ps -o pid=,comm= --ppid $kp | awk '$2 == "kingx-worker" {print $1}')
      H=(); [ $mode = close ] && H=(-H "Connection: close")
      perf stat -x, -e instructions:u -p $w -o $d/perf.txt -- sleep 6 &
      pp=$!
      out=$(wrk -t1 -c8 -d5s "${H[@]}" http://127.0.0.1:$port/v1/kv/small)
      wait $pp
      req=$(echo "$out" | awk '/requests in/ {print $1}')
      ins=$(grep instructions $d/perf.txt | cut -d, -f1)
      echo "round $r $mode $name requests $req instructions_u $ins per_request $(echo "$ins / $req" | bc) load $(cut -d' ' -f1-3 /proc/loadavg)"
      kill $kp; wait $kp 2>/dev/null
      rm -rf $d
    done
  done
done
