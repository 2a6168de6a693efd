#!/bin/bash
# Interleaved pairs of the sharding proxy test: ref (main db9bab8 release) and new (release), durations.
cd /work/wt/abuse
for i in 1 2; do
  for b in ref new; do
    if [ $b = ref ]; then bin=/work/ref/s22/kingx; else bin=/tmp/abuse22/bin-p1b/kingx; fi
    t0=$(date +%s.%N)
    KINGX_BIN=$bin PYTHONDONTWRITEBYTECODE=1 timeout 600 python3 tests/deploy/test_sharding.py --proxy $1 > /tmp/abuse22/shard-$1-$b-$i.log 2>&1
    rc=$?
    t1=$(date +%s.%N)
    echo "$1 $b pair $i rc $rc $(echo "$t1 - $t0" | bc) s load $(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%H:%M:%S)"
  done
done
