#!/bin/bash
# usage: prof2.sh KINGX OUTPREFIX CASE(slow-body|slowloris|none)
K=$1; O=$2; CASE=$3
D=$(mktemp -d /tmp/abuse20/sb.XXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
taskset -c 0 $K --listen 127.0.0.1:$PORT --data $D/data --workers 1 --error-log $D/err.log --model event > $D/out.log 2>&1 &
KP=$!
for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.1; done
curl -s -X PUT --data-binary @<(head -c 100 /dev/zero | tr '\0' v) http://127.0.0.1:$PORT/v1/kv/small
W=$(pgrep -P $KP -x kingx-worker | head -1)
taskset -c 0 wrk -t1 -c50 -d2s http://127.0.0.1:$PORT/v1/kv/small > /dev/null
run() {
C0=$(awk '{print $14+$15}' /proc/$W/stat)
perf record -F 999 -p $W -o $O.$1.perf.data -- sleep 6 > /dev/null 2>&1 &
PP=$!
R=$(taskset -c 0 wrk -t1 -c50 -d6s http://127.0.0.1:$PORT/v1/kv/small | awk '/requests in/{print $1}')
C1=$(awk '{print $14+$15}' /proc/$W/stat); echo "$1 requests $R worker ticks $((C1-C0)) us/req $(python3 -c "print(round(($C1-$C0)*1e4/$R,2))") load $(cut -d' ' -f1 /proc/loadavg)"
wait $PP
}
run alone
case $CASE in
slow-body) taskset -c 1 slowhttptest -l 60 -p 3 -r 1000 -B -c 3000 -i 5 -x 24 -s 1048576 -t PUT -u http://127.0.0.1:$PORT/v1/kv/slow-body > $D/sht.log 2>&1 & ;;
slowloris) taskset -c 1 slowhttptest -l 60 -p 3 -r 1000 -H -c 3000 -i 5 -x 24 -u http://127.0.0.1:$PORT/v1/kv/small > $D/sht.log 2>&1 & ;;
none) sleep 60 & ;;
esac
SP=$!
sleep 8
run abused
C0=$(awk '{print $14+$15}' /proc/$W/stat); sleep 5; C1=$(awk '{print $14+$15}' /proc/$W/stat); echo "abuse alone 5s worker ticks $((C1-C0)) conns $(ss -tn state established "( sport = :$PORT )" | wc -l) anon $(grep RssAnon /proc/$W/status)"
run alone2
kill $SP; wait $SP 2>/dev/null
kill $KP; wait $KP
rm -rf $D
