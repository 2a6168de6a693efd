#!/bin/bash
# Uploads waiting for the body budget, nothing else to do: the worker's wake-ups and CPU per second,
# thread and event models, this change (NEW, a copy of build-release/src/kingx) beside main at the
# session's start (/work/ref/s24/kingx, 8c6b542) and the landed response waiters (MID, a976971 release).
# Usage: NEW=... [MID=...] raw/held.sh OUT
cd /work/wt/abuse || exit 1
uptime
python3 bench/budget_wait.py --kingx new-threads="$NEW":threads --kingx ref-threads=/work/ref/s24/kingx:threads \
  --kingx new="$NEW" --kingx ref=/work/ref/s24/kingx --cases held --rounds 2 --sample 5 --seed 24 --out "$1"
uptime
