#!/bin/bash
# This session's measurements, one after another (run from the repository root):
# slow body in paired phases, the six cases in two rounds (bench/abuse_rounds.sh), the garbage flood in
# paired phases for both models, each beside the previous main (/work/ref/s20/kingx) and nginx.
# NEW: the landed code (release build of 5295c32, copied to /tmp/abuse20/bin-land).
NEW=${NEW:-/tmp/abuse20/bin-land/kingx}
REF=${REF:-/work/ref/s20/kingx}
R=bench/results/2026-12-06-abuse20
echo "slow-body phases start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 1200 python3 bench/abuse_phases.py --case slow-body --kingx new=$NEW --kingx ref=$REF --nginx --rounds 2 \
  --phases 2 --seconds 6 --settle 6 --seed 2 --out $R/phases-slow-body > $R/phases-slow-body.log 2>&1
echo "slow-body phases end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
NEW=$NEW REF=$REF bench/abuse_rounds.sh $R 1 2
echo "garbage phases start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 1500 python3 bench/abuse_phases.py --case garbage --kingx new=$NEW --kingx ref=$REF \
  --kingx new-threads=$NEW:threads --kingx ref-threads=$REF:threads --nginx --rounds 2 --phases 2 --seconds 6 \
  --settle 4 --seed 3 --out $R/phases-garbage-2 > $R/phases-garbage-2.log 2>&1
echo "garbage phases end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
