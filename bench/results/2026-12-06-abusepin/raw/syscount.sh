#!/bin/bash
# Per-abuse system calls of one server's worker: start the server (on CPU 0), the abuse tool (on CPU 1)
# for SECS+8 s, strace -c -f -p the worker(s) for SECS s after 4 s of build-up; print the abuse tool's
# counters. Usage: syscount.sh kingx|nginx CASE SECS OUTDIR   (CASE: garbage, slowloris, slow-body, slow-read)
# TOOL=perf: perf record -g of the worker(s) instead of strace -c (OUTDIR/SERVER-CASE.perf.data).
# Bounded: every process started here is stopped by its PID.
set -u
server=$1; case=$2; secs=$3; out=$4
here=$(cd "$(dirname "$0")/../../../.." && pwd)
KINGX=${KINGX:-/work/ref/s16/kingx}
tmp=$(mktemp -d /tmp/abusepin-sc.XXXX); chmod 755 "$tmp"
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
mkdir -p "$out"
if [ "$server" = kingx ]; then
  taskset -c 0 "$KINGX" --listen 127.0.0.1:$port --data "$tmp/data" --workers 1 --error-log "$tmp/error.log" --model event >"$tmp/out.log" 2>&1 &
  spid=$!; path=/v1/kv/small; bigpath=/v1/kv/big; putpath=/v1/kv/slow-body
  for i in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.2; done
  curl -s -o /dev/null -X PUT --data-binary "$(head -c 100 /dev/zero | tr '\0' v)" "http://127.0.0.1:$port$path"
  head -c 1048576 /dev/urandom >"$tmp/big"; curl -s -o /dev/null -X PUT --data-binary @"$tmp/big" "http://127.0.0.1:$port$bigpath"
  wpids=$(pgrep -P $spid -x kingx-worker | paste -sd,)
else
  # abuse.py's nginx (bench/harness/peers.py), started on CPU 0; it outlives this python (own session)
  read spid port < <(cd "$here/bench" && taskset -c 0 python3 -c "
import os, sys
from harness import peers
p, port = peers.start_nginx('$tmp', 1, reuseport=True, error_level='error', client_max_body_size='64m',
    tcp_nopush=False, static_files={'v100.txt': b'v' * 100, 'v1m.bin': os.urandom(1 << 20)})
print(p.pid, port)")
  path=/s/v100.txt; bigpath=/s/v1m.bin; putpath=/r
  wpids=$(pgrep -P $spid -x nginx | paste -sd,)
fi
len=$((secs + 8))
case $case in
  garbage) taskset -c 1 python3 "$here/bench/abuse_clients.py" garbage --port $port --conns 64 --seconds $len >"$out/$server-$case.abuser.json" 2>&1 & apid=$! ;;
  slowloris) taskset -c 1 slowhttptest -l $len -p 3 -r 1000 -H -c 3000 -i 5 -x 24 -u "http://127.0.0.1:$port$path" >/dev/null 2>&1 & apid=$! ;;
  slow-body) taskset -c 1 slowhttptest -l $len -p 3 -r 1000 -B -c 3000 -i 5 -x 24 -s 1048576 -t PUT -u "http://127.0.0.1:$port$putpath" >/dev/null 2>&1 & apid=$! ;;
  slow-read) taskset -c 1 slowhttptest -l $len -p 3 -r 1000 -X -c 3000 -w 512 -y 1024 -n 5 -z 32 -k 3 -u "http://127.0.0.1:$port$bigpath" >/dev/null 2>&1 & apid=$! ;;
esac
sleep 4
cpu0=$(awk '{print $14+$15}' /proc/${wpids%%,*}/stat)
if [ "${TOOL:-strace}" = perf ]; then
  perf record -q -g -o "$out/$server-$case.perf.data" -p $wpids -- sleep $secs 2>/dev/null
else
  timeout -s INT $secs strace -c -f -p $wpids -o "$out/$server-$case.strace" 2>/dev/null
fi
cpu1=$(awk '{print $14+$15}' /proc/${wpids%%,*}/stat)
echo "$server $case worker CPU ticks over ${secs}s under ${TOOL:-strace}: $((cpu1-cpu0))" | tee "$out/$server-$case.cpu"
kill -INT $apid 2>/dev/null; wait $apid 2>/dev/null
kill $spid; for i in $(seq 50); do kill -0 $spid 2>/dev/null || break; sleep 0.1; done
rm -rf "$tmp"
