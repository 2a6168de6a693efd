#!/bin/bash
# paired, interleaved (ABBA per round): ref (main a45c937e) and et = this branch with both cuts (kingx-room) at c=1000 and c=100, no profiler
cd /work/wt/getc1k
for r in 1 2 3 4; do
  for c in 1000 100; do
    uptime
    if [ $((r % 2)) = 1 ]; then order="ref et"; else order="et ref"; fi
    for b in $order; do
      bin=/work/ref/s30/kingx; [ $b = et ] && bin=/tmp/getc1k-bin/kingx-room
      bench/get_conns_profile.sh $bin /tmp/getc1k-tpl/d1m 1000000 $c /tmp/getc1k-m4 4 2 $b-r$r
    done
  done
done
uptime
