#!/bin/bash
# hint-file write() calls of the writer per PUT under wrk -c100 PUT load (strace on the writer)
K=$1; D=$(mktemp -d /tmp/seam-hw.XXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$K --listen 127.0.0.1:$PORT --data $D/data --workers 1 --sync always --segment-bytes 256M --compaction off --access-log off --error-log $D/err.log > $D/out.log 2>&1 &
VP=$!
for i in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
R=$(for p in $(pgrep -P $VP); do [ "$(cat /proc/$p/comm)" = kingx-writer ] && echo $p; done | head -1)
LUA=/work/wt/seam/bench/lua/kv.lua
wrk -t1 -c100 -d1s -s $LUA http://127.0.0.1:$PORT/ -- keyp=key- nkeys=100000 size=100 put_prefix=/v1/kv/ putfrac=1 >/dev/null
HFD=-
recs() { curl -s http://127.0.0.1:$PORT/metrics | awk '$1 == "kingx_writer_records_total" {print $2}'; }
a=$(recs)
timeout 20 strace -f -qq -y -ttt -e trace=write,pwrite64 -p $R -o $D/st.txt &
SP=$!; sleep 1
wrk -t1 -c100 -d5s -s $LUA http://127.0.0.1:$PORT/ -- keyp=key- nkeys=100000 size=100 put_prefix=/v1/kv/ putfrac=1 >/dev/null
sleep 0.2; kill $SP; wait $SP 2>/dev/null
b=$(recs)
ls -l /proc/$R/fd | awk '/\.hint$/ {print $9, $11}' > $D/hints.txt
# the active segment's hint: the highest-numbered one open
HFD2=$(sort -k2 $D/hints.txt | tail -1 | cut -d' ' -f1)
hw=$(grep -cE "^[0-9]+ +[0-9.]+ (write|pwrite64)\([0-9]+<[^>]*\.hint>," $D/st.txt)
allw=$(grep -cE "^[0-9]+ +[0-9.]+ (write|pwrite64)\(" $D/st.txt)
echo "$(basename $(dirname $(dirname $K)))/$(basename $K) puts $((${b%.*}-${a%.*})) hint_fd $HFD/$HFD2 hint_writes $hw all_writes $allw load $(cut -d' ' -f1 /proc/loadavg)"
kill $VP; wait $VP 2>/dev/null
[ -n "$KEEP" ] && echo kept $D || rm -rf $D
