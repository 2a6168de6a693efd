#!/bin/bash
cd /tmp/writer24
echo "perf start $(date +%T) $(uptime)"
TEMPLATE=/tmp/writer24/tmpl TMPDIR=/tmp/writer24 bash /work/wt/writer/bench/put_perf_stat.sh /tmp/writer24/perf-always-c100.tsv always 100 4 s24=/work/ref/s24/kingx s23=/work/ref/s23/kingx s22=/work/ref/s22/kingx
echo "perf end $(date +%T) $(uptime)"
for r in 1 2 3; do
  for k in $(printf '%s\n' /work/ref/s24/kingx /tmp/writer24/kingx-swap | shuf); do
    echo "round $r $(date +%T) $k"
    TEMPLATE=/tmp/writer24/tmpl TMPDIR=/tmp/writer24 bash /work/wt/writer/bench/callgrind_put.sh $k always 100 2>&1 | grep kingx
  done
done
echo "end $(date +%T)"
