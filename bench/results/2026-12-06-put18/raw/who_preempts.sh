#!/bin/bash
# usage: who_preempts.sh KINGX SYNC CONNS OUTDIR
# Starts kingx (1 worker, --sync SYNC) on a scratch directory, warms 100k keys, then under wrk -cCONNS PUTs records
# sched_switch for 3 s machine-wide and counts, for the worker: switches out by state (R = preempted, S = slept)
# and who ran next; for every kingx thread: how often it was switched in. Stops what it started by PID.
set -u
BIN=$1; SYNC=$2; C=$3; OUT=$4
mkdir -p "$OUT"
D=$(mktemp -d /tmp/put-who-XXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
LUA=$(dirname "$0")/../../../lua/kv.lua
"$BIN" --listen 127.0.0.1:$PORT --data $D/data --workers 1 --sync $SYNC --access-log off --max-connections 19000 > $D/log 2>&1 &
KP=$!
for i in $(seq 1 100); do curl -fs http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
timeout 60 wrk -t1 -c100 -d2s -s $LUA http://127.0.0.1:$PORT/ -- keyp=k nkeys=100000 size=100 put_prefix=/v1/kv/k putfrac=1 >/dev/null
timeout 60 wrk -t1 -c$C -d6s -s $LUA http://127.0.0.1:$PORT/ -- keyp=k nkeys=100000 size=100 put_prefix=/v1/kv/k putfrac=1 > $OUT/wrk-$SYNC-c$C.txt &
WP=$!
sleep 1.5
WPID=$(pgrep -P $KP kingx-worker | head -1)
perf record -q -e sched:sched_switch -a -o $D/sched.data -- sleep 3 2>/dev/null
wait $WP
kill -TERM $KP; wait $KP
perf script -i $D/sched.data -F comm,pid,tid,cpu,event,trace 2>/dev/null > $D/sched.txt
python3 - "$D/sched.txt" "$WPID" "$OUT/who-$SYNC-c$C.txt" "$OUT/wrk-$SYNC-c$C.txt" <<'PY'
import re, sys, collections
path, wpid, out, wrkf = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
n = int(re.search(r"([0-9]+) requests in", open(wrkf).read()).group(1))
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", open(wrkf).read()).group(1))
reqs = rps * 3.0
pre = collections.Counter(); slept = collections.Counter(); swin = collections.Counter()
for line in open(path):
    m = re.search(r"prev_comm=(.*?) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)", line)
    if not m: continue
    pc, pp, st, nc, np = m.groups()
    if pp == wpid:
        (pre if st.startswith("R") else slept)[nc] += 1
    swin[nc] += 1
with open(out, "w") as f:
    print(f"requests in the 3 s window ~{reqs:.0f} (wrk {rps:.0f} req/s)", file=f)
    print(f"worker preempted (prev_state R) per request: {sum(pre.values())/reqs:.4f}; by whom:", file=f)
    for k, v in pre.most_common(8): print(f"   {k}: {v/reqs:.4f}", file=f)
    print(f"worker slept (S) per request: {sum(slept.values())/reqs:.4f}; next ran:", file=f)
    for k, v in slept.most_common(6): print(f"   {k}: {v/reqs:.4f}", file=f)
    print("switches in per request, by thread name:", file=f)
    for k, v in swin.most_common(14): print(f"   {k}: {v/reqs:.4f}", file=f)
print(open(out).read())
PY
rm -rf $D
