#!/bin/bash
# Baseline: main's release binary and nginx under the garbage flood at 64, 256 and 1024 flood connections.
cd /work/wt/abuse
for n in 256 1024 64; do
  uptime
  python3 bench/abuse_phases.py --case garbage --kingx ref=/work/ref/s23/kingx --kingx ref-threads=/work/ref/s23/kingx:threads \
    --nginx --rounds 1 --phases 2 --seconds 6 --settle 4 --seed 3 --flood-conns $n --out /tmp/abuse23/base/flood$n
  uptime
done
