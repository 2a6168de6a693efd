#!/bin/bash
cd /work/wt/abuse
R=bench/results/2026-12-06-abuse18
export NEW=/tmp/abuse18/fix/kingx REF=/work/ref/s18/kingx
echo "tcpmem start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 300 python3 $R/raw/tcpmem.py 6 ref=$REF kingx=$NEW > $R/tcpmem.json 2> $R/tcpmem.log
echo "tcpmem end $(date -u +%T) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
bench/abuse_rounds.sh $R 4 5 > $R/rounds-4.log 2>&1
cat $R/rounds-4.log
echo "split-3 start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 900 python3 $R/raw/split.py 8 2 ref=$REF kingx=$NEW > $R/split-3.json 2> $R/split-3.log
echo "split-3 end $(date -u +%T) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
