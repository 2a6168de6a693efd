#!/bin/sh
# The abuse idle-10k row, this branch (kingx) beside today's main (old) and nginx, three rounds
# (each invocation is one round; servers shuffled per round by the script).
cd /work/wt/putreg
for seed in 1 2 3; do
  uptime
  python3 bench/abuse.py --cases idle-10k --servers kingx,old,nginx --kingx build-release/src/kingx \
    --kingx-alt old=/work/ref/today/kingx --duration 8 --settle 6 --seed $seed \
    --out bench/results/2026-12-05-idleq/abuse-round$seed
  uptime
done
