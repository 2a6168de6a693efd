#!/bin/bash
# Paired phases, 2 rounds, flood 256 and 1024: new (278c9cc) and ref (main 9e61d69), both models.
cd /work/wt/abuse
for n in 1024 256; do
  echo "uptime before flood$n: $(uptime)"
  python3 bench/abuse_phases.py --case garbage --kingx new=/tmp/abuse23/bin-new/kingx --kingx ref=/work/ref/s23/kingx \
    --kingx new-threads=/tmp/abuse23/bin-new/kingx:threads --kingx ref-threads=/work/ref/s23/kingx:threads \
    --rounds 2 --phases 2 --seconds 6 --settle 4 --seed 5 --flood-conns $n --out /tmp/abuse23/phases2/flood$n
  echo "uptime after flood$n: $(uptime)"
done
