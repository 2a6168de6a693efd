#!/bin/bash
# The abuse measurement's rounds: per round, bench/abuse.py pinned (server + wrk on CPU 0, abuse tool
# on CPU 1) with --steady 8, the six cases of the issue's goal, three servers in a shuffled order per
# case: kingx = the binary measured (NEW), the reference = the previous main (REF, named REF_NAME:
# default ref), nginx from the harness. Then, with `cost`, bench/abuse_cost.py: server CPU per garbage
# connection and per slow-read response. Each round's output goes to RESULTS_DIR/roundN (and its log
# beside it); tables: bench/abuse_table.py RESULTS_DIR [REF_NAME].
# Usage: NEW=... REF=... [REF_NAME=...] bench/abuse_rounds.sh RESULTS_DIR FIRST LAST [cost]
R=$1
REF_NAME=${REF_NAME:-ref}
cd "$(dirname "$0")/.." || exit 1
CASES=slowloris,slow-body,slow-read,idle-10k,garbage,fd-exhaustion
for n in $(seq "$2" "$3"); do
  echo "round $n start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout 1800 python3 bench/abuse.py --kingx "$NEW" --kingx-alt "$REF_NAME"="$REF" --servers kingx,"$REF_NAME",nginx \
    --cases $CASES --pin 0:1 --duration 8 --settle 6 --steady 8 --seed "$n" --out $R/round$n > $R/round$n.log 2>&1
  echo "round $n end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
done
if [ "$4" = cost ]; then
  echo "cost start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout 1200 python3 bench/abuse_cost.py --kingx "$REF_NAME"="$REF" --kingx kingx="$NEW" --nginx --rounds 3 \
    --seconds 10 --seed "$2" --out $R/cost-$2 > $R/cost-$2.log 2>&1
  echo "cost end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
fi
