#!/bin/bash
# The measurements of bench/results/2026-12-07-slowread25 (run from the repository root).
# NEW: a release build of main 6b18374 (meson setup build-release -Dbuildtype=release -Dtests=false
# -Dkill_points=false); REF: /work/ref/s25/kingx (main 759bd6d, the session's start).
# Usage: NEW=... REF=... bench/results/2026-12-07-slowread25/raw/run.sh OUT
O=$1
S="--kingx new=$NEW --kingx ref=$REF --kingx new-threads=$NEW:threads --nginx"
for case in slow-read slow-body; do
  echo "$case start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout 900 nice -n 10 python3 bench/abuse_phases.py $S --rounds 1 --phases 2 --seconds 5 --settle 4 --seed 25 \
    --case $case --out $O/phases-$case > $O/phases-$case.log 2>&1
  echo "$case end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
done
for case in slow-read slow-body; do
  echo "profile $case start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout 600 nice -n 10 python3 bench/slowread_profile.py --kingx new=$NEW --kingx ref=$REF --nginx --case $case \
    --rounds 1 --seconds 14 --strace-at 9 --strace-s 4 --seed 25 --out $O/profile-$case > $O/profile-$case.log 2>&1
  echo "profile $case end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "callgrind start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 900 python3 bench/callgrind_slow_readers.py --kingx new=$NEW --kingx ref=$REF --readers 100 --hold-s 5 \
  --rounds 2 --out $O/cg-slow-readers.json --keep $O/cg > $O/cg-slow-readers.log 2>&1
echo "callgrind end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
