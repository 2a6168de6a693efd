#!/bin/bash
# Interleaved pairs of the sharding proxy tests: ref (main 9e61d69 release) and new (278c9cc release), durations.
cd /work/wt/abuse
for proxy in haproxy nginx; do
  for b in ref new; do
    if [ $b = ref ]; then bin=/work/ref/s23/kingx; else bin=/tmp/abuse23/bin-new/kingx; fi
    t0=$(date +%s.%N)
    KINGX_BIN=$bin PYTHONDONTWRITEBYTECODE=1 timeout 600 python3 tests/deploy/test_sharding.py --proxy $proxy > /tmp/abuse23/guards/shard-$proxy-$b.log 2>&1
    rc=$?
    t1=$(date +%s.%N)
    echo "$proxy $b rc $rc $(echo "$t1 - $t0" | bc) s load $(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%H:%M:%S)"
  done
done
