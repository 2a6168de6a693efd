#!/bin/bash
# ABBA: ref (main a45c937e) and et (this branch) at c=100 and c=1000, PROFILE=1
cd /work/wt/getc1k
for r in 1 2; do
  for c in 1000 100; do
    uptime
    if [ $r = 1 ]; then order="ref et"; else order="et ref"; fi
    for b in $order; do
      bin=/work/ref/s30/kingx; [ $b = et ] && bin=/tmp/getc1k-bin/kingx-et
      PROFILE=1 bench/get_conns_profile.sh $bin /tmp/getc1k-tpl/d1m 1000000 $c /tmp/getc1k-m2 5 2 $b-r$r
    done
  done
done
uptime
