#!/bin/sh
# callgrind instructions per GET, old (today's main, /work/ref/today/kingx) vs new (this branch's
# release tree), without and with 10,000 idle keep-alive connections held, with abusefd-diag's
# cg_idle.py (its annotations land in that directory's cg/: moved here).
set -x
D=/work/wt/putreg/bench/results/2026-12-05-abusefd-diag
NEW=/work/wt/putreg/build-release/src/kingx
OLD=/work/ref/today/kingx
mkdir -p cg
for m in none idle; do
  uptime
  python3 $D/cg_idle.py $OLD old $m && mv $D/cg/old-$m.annotate.txt cg/
  uptime
  python3 $D/cg_idle.py $NEW new $m && mv $D/cg/new-$m.annotate.txt cg/
done
