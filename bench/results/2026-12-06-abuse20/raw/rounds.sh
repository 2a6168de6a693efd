#!/bin/bash
# The measurement: per round, bench/abuse.py pinned (server + wrk on CPU 0, abuse tool on CPU 1) with
# --steady 8, the six cases of the issue's goal, three servers in a shuffled order per case:
# kingx = this branch (NEW), ref = the previous main (REF, /work/ref/s20/kingx), nginx from the harness.
# Then bench/abuse_cost.py: server CPU per garbage connection and per slow-read response.
# Usage: NEW=... REF=... rounds.sh FIRST LAST [cost]
cd "$(dirname "$0")/../../../.." || exit 1
R=bench/results/2026-12-06-abuse20
CASES=slowloris,slow-body,slow-read,idle-10k,garbage,fd-exhaustion
for n in $(seq "$1" "$2"); do
  echo "round $n start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout 1800 python3 bench/abuse.py --kingx "$NEW" --kingx-alt ref="$REF" --servers kingx,ref,nginx \
    --cases $CASES --pin 0:1 --duration 8 --settle 6 --steady 8 --seed "$n" --out $R/round$n > $R/round$n.log 2>&1
  echo "round $n end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
done
if [ "$3" = cost ]; then
  echo "cost start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout 1200 python3 bench/abuse_cost.py --kingx ref="$REF" --kingx kingx="$NEW" --nginx --rounds 3 \
    --seconds 10 --seed "$1" --out $R/cost-$1 > $R/cost-$1.log 2>&1
  echo "cost end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
fi
