#!/bin/bash
# kingx --sync always, 1 worker, wrk PUT c=$2 for 6 s; at 2 s strace the writer (all threads) and the worker for 2 s;
# classify their read/write calls by fd type: per fdatasync, the writer's eventfd writes and the worker's eventfd reads.
K=$1; C=$2; OUT=$3
BENCH=$(cd "$(dirname "$0")/../../../.." && pwd)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
D=/tmp/wake-strace-data; rm -rf $D; cp -r /tmp/writer23/tmpl $D; rm -f $D/LOCK
L=$(mktemp -d /tmp/wake-st.XXXX)
"$K" --listen 127.0.0.1:$PORT --data $D --workers 1 --sync always --error-log $L/err.log > $L/out.log 2>&1 & KP=$!
for i in $(seq 600); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
W=""; WR=""
for p in $(pgrep -P $KP); do case "$(cat /proc/$p/comm)" in kingx-worker) W=$p;; kingx-writer) WR=$p;; esac; done
timeout 30 wrk -t1 -c$C -d6s --timeout 10s -s $BENCH/lua/kv.lua http://127.0.0.1:$PORT/ -- keyp=key- nkeys=1000000 putfrac=1 > $OUT.wrk 2>&1 &
WP=$!
sleep 2
ls -l /proc/$WR/fd > $OUT.writer-fds; ls -l /proc/$W/fd > $OUT.worker-fds
timeout 2 strace -f -p $WR -e trace=write,fdatasync,poll,read -o $OUT.writer.st 2>/dev/null &
timeout 2 strace -p $W -e trace=read,write,epoll_wait -o $OUT.worker.st 2>/dev/null &
wait $WP
kill $KP; wait $KP 2>/dev/null
rm -rf $D $L
python3 - $OUT <<'PY'
import re, sys, collections
out = sys.argv[1]
def fdkinds(f):
    k = {}
    for l in open(f):
        m = re.search(r" (\d+) -> (.*)$", l)
        if m: k[m.group(1)] = "eventfd" if "eventfd" in m.group(2) else ("socket" if "socket" in m.group(2) else m.group(2).split("/")[-1])
    return k
for who in ("writer", "worker"):
    kinds = fdkinds(f"{out}.{who}-fds")
    c = collections.Counter()
    for l in open(f"{out}.{who}.st"):
        m = re.match(r"(?:\d+\s+)?(\w+)\((\d+)?", l)
        if not m: continue
        name, fd = m.group(1), m.group(2)
        c[(name, kinds.get(fd, "other") if fd else "-")] += 1
    print(who, dict(c))
PY
