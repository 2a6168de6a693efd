#!/bin/bash
cd /work/wt/abuse
R=bench/results/2026-12-06-abuse18
export NEW=/tmp/abuse18/new/kingx REF=/work/ref/s18/kingx
echo "split-2 start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 900 python3 $R/raw/split.py 8 2 ref=$REF kingx=$NEW > $R/split-2.json 2> $R/split-2.log
echo "split-2 end $(date -u +%T) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
bench/abuse_rounds.sh $R 1 3 > $R/rounds-1.log 2>&1
cat $R/rounds-1.log
echo "bigget start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 900 python3 $R/raw/bigget.py 3 5 ref=$REF kingx=$NEW > $R/bigget.json 2> $R/bigget.log
echo "bigget end $(date -u +%T) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "close-2 start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 1200 python3 bench/abuse_close_pairs.py 8 3 50 ref=$REF kingx=$NEW > $R/close-2.json 2> $R/close-2.log
echo "close-2 end $(date -u +%T) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
