#!/bin/bash
# The writer loop's delay from an fdatasync's return to the write(2) of the worker's completion
# eventfd that announces that batch's answers: strace -ttt -T of the writer thread for 3 s under a
# wrk PUT load (strace slows every call alike in both binaries; the order of calls is what counts).
# usage: answer_gap.sh BIN CONNS OUT ; every process it starts is stopped by its PID.
BIN=$1; C=$2; OUT=$3
D=$(mktemp -d); PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$BIN --listen 127.0.0.1:$PORT --data $D --workers 1 --sync always --access-log off --max-connections 19000 >$D/log 2>&1 &
M=$!
for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
LUA=$(cd "$(dirname "$0")/../../../lua" && pwd)/kv.lua
W="wrk -t1 -c$C --timeout 10s -s $LUA http://127.0.0.1:$PORT/ -- keyp=k nkeys=100000 size=100 put_prefix=/v1/kv/ putfrac=1"
timeout 60 $W -d2s >/dev/null
WP=""; for p in $(pgrep -P $M); do grep -q writer /proc/$p/comm && WP=$p; done
timeout 60 $W -d5s > $OUT.wrk &
LP=$!
sleep 1
timeout 3 strace -ttt -T -e trace=fdatasync,pwrite64,write -p $WP -o $OUT.strace 2>/dev/null
wait $LP
kill $M; wait $M
rm -rf $D
python3 - "$OUT.strace" <<'PY'
import re, statistics, sys
gaps, between = [], []
t_sync = None
pw = 0
for line in open(sys.argv[1]):
    m = re.match(r"(\d+\.\d+) (\w+)\((\d+)[,)].*= (-?\d+).*<([\d.]+)>", line)
    if not m:
        continue
    t, call, fd, ret, dur = float(m.group(1)), m.group(2), m.group(3), int(m.group(4)), float(m.group(5))
    if call == "fdatasync":
        t_sync = t + dur  # when it returned
        pw = 0
    elif call == "pwrite64" and t_sync is not None:
        pw += 1
    elif call == "write" and ret == 8 and t_sync is not None:
        gaps.append((t - t_sync) * 1e6)
        between.append(pw)
        t_sync = None
if gaps:
    print(f"batches {len(gaps)}: fdatasync return -> completion eventfd write: median {statistics.median(gaps):.0f} us, "
          f"mean {statistics.mean(gaps):.0f} us; pwrite64 calls in between: mean {statistics.mean(between):.2f}")
PY
