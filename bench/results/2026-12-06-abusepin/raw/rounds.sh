#!/bin/bash
# The measurement: per round, bench/abuse.py pinned then unpinned (kingx = /work/ref/s16/kingx, nginx),
# the six cases of the issue's goal, the same settings as ../2026-12-05-abuse-quiet2. Usage: rounds.sh FIRST LAST
# STEADY=S adds --steady S (rounds 3 and 4).
cd "$(dirname "$0")/../../../.." || exit 1
R=bench/results/2026-12-06-abusepin
CASES=slowloris,slow-body,slow-read,idle-10k,garbage,fd-exhaustion
for n in $(seq "$1" "$2"); do
  for mode in pinned unpinned; do
    pin=(); [ $mode = pinned ] && pin=(--pin 0:1)
    echo "round $n $mode start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
    timeout 1500 python3 bench/abuse.py --kingx /work/ref/s16/kingx --cases $CASES "${pin[@]}" \
      --duration 8 --settle 6 ${STEADY:+--steady $STEADY} --seed $n --out $R/round$n-$mode > $R/round$n-$mode.log 2>&1
    echo "round $n $mode end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
