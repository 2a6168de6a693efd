#!/bin/bash
# interleaved: ref kingx and nginx return 200 at c=100 and c=1000, 2 rounds
cd /work/wt/getc1k
for r in 1 2; do
  for c in 100 1000; do
    uptime
    PROFILE=1 bench/get_conns_profile.sh /work/ref/s30/kingx /tmp/getc1k-tpl/d1m 1000000 $c /tmp/getc1k-m1 5 2 kingx-r$r
    PROFILE=1 bench/get_conns_profile.sh nginx /tmp/getc1k-tpl/d1m 1000000 $c /tmp/getc1k-m1 5 2 nginx-r$r
  done
done
uptime
