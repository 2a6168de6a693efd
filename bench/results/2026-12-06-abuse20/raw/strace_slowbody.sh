#!/bin/bash
# strace_slowbody.sh KINGX OUT: syscalls and CPU of the worker for 10 s of slowhttptest -B (3,000 connections) alone
K=$1; O=$2
D=$(mktemp -d /tmp/abuse20/sb.XXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
taskset -c 0 $K --listen 127.0.0.1:$PORT --data $D/data --workers 1 --error-log $D/err.log --model event > $D/out.log 2>&1 &
KP=$!
for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.1; done
W=$(pgrep -P $KP -x kingx-worker | head -1)
taskset -c 1 slowhttptest -l 60 -p 3 -r 1000 -B -c 3000 -i 5 -x 24 -s 1048576 -t PUT -u http://127.0.0.1:$PORT/v1/kv/slow-body > $D/sht.log 2>&1 &
SP=$!
sleep 8
r0=$(curl -s http://127.0.0.1:$PORT/metrics | awk '/^kingx_http_received_bytes_total/{print $2}')
C0=$(awk '{print $14+$15}' /proc/$W/stat)
timeout -s INT 10 strace -c -p $W -o $O 2>/dev/null
C1=$(awk '{print $14+$15}' /proc/$W/stat)
r1=$(curl -s http://127.0.0.1:$PORT/metrics | awk '/^kingx_http_received_bytes_total/{print $2}')
echo "worker CPU ticks in the 10 s (under strace): $((C1-C0)); bytes received: $(python3 -c "print(int($r1-$r0))"); conns $(ss -tn state established "( sport = :$PORT )" | wc -l)" >> $O
C0=$(awk '{print $14+$15}' /proc/$W/stat); sleep 10; C1=$(awk '{print $14+$15}' /proc/$W/stat)
echo "worker CPU ticks in 10 s without strace: $((C1-C0)) (clock ticks of $(getconf CLK_TCK)/s)" >> $O
kill $SP; wait $SP 2>/dev/null
kill $KP; wait $KP
rm -rf $D
