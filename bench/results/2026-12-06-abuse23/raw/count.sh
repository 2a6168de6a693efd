#!/bin/bash
cd /tmp/abuse23/exp
for n in 256 1024; do for m in event threads; do for b in /tmp/abuse23/bin-new/kingx /work/ref/s23/kingx; do
  echo "# $(date +%T) uptime: $(uptime)"; python3 floodcount.py $b $m $n 2>&1 | tail -2
done; done; done
