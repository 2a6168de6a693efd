#!/bin/bash
# shuffled rounds of callgrind_put.sh, always c=100
cd /work/wt/writer
for r in 1 2 3; do
  for k in $(printf '%s\n' /work/ref/s24/kingx /work/ref/s23/kingx /work/ref/s22/kingx | shuf); do
    echo "round $r $(date +%T) $k"
    TEMPLATE=/tmp/writer24/tmpl TMPDIR=/tmp/writer24 bash bench/callgrind_put.sh $k always 100 2>&1
  done
done
