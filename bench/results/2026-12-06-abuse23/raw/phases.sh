#!/bin/bash
# Paired phases beside the garbage flood at 256, 1024 and 64 connections: new (this branch) and ref (main 9e61d69)
# in both models, and nginx.
cd /work/wt/abuse
for n in 256 1024 64; do
  echo "uptime before flood$n: $(uptime)"
  python3 bench/abuse_phases.py --case garbage --kingx new=/tmp/abuse23/bin-new/kingx --kingx ref=/work/ref/s23/kingx \
    --kingx new-threads=/tmp/abuse23/bin-new/kingx:threads --kingx ref-threads=/work/ref/s23/kingx:threads \
    --nginx --rounds 1 --phases 2 --seconds 6 --settle 4 --seed 3 --flood-conns $n --out /tmp/abuse23/phases/flood$n
  echo "uptime after flood$n: $(uptime)"
done
