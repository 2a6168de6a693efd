#!/bin/bash
cd /tmp/writer24
echo "start $(date +%T) $(uptime)"
TEMPLATE=/tmp/writer24/tmpl TMPDIR=/tmp/writer24 bash /work/wt/writer/bench/put_perf_stat.sh /tmp/writer24/perf-always-c1000.tsv always 1000 4 s24=/work/ref/s24/kingx s23=/work/ref/s23/kingx
echo "mid $(date +%T) $(uptime)"
TEMPLATE=/tmp/writer24/tmpl TMPDIR=/tmp/writer24 bash /work/wt/writer/bench/put_perf_stat.sh /tmp/writer24/perf-none-c100.tsv none 100 4 s24=/work/ref/s24/kingx s23=/work/ref/s23/kingx
echo "end $(date +%T) $(uptime)"
