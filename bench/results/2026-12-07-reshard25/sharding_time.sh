#!/bin/bash
# What the HAProxy move window adds to deploy_sharding_haproxy: tests/deploy/test_sharding.py
# --proxy haproxy of main at 759bd6d and of this change, run in turns (old, new, old, new) against
# the same kingx, each case's wall time and the run's CPU time (the test and every process it
# waited for: kingx, HAProxy, kingx-reshard), `uptime` beside each run.
#   bench/results/2026-12-07-reshard25/sharding_time.sh OLD_TREE NEW_TREE KINGX ROUNDS
# OLD_TREE/NEW_TREE hold deploy/ and tests/ (git archive REV deploy tests | tar -x -C DIR).
set -u
old=$1 new=$2 kingx=$3 rounds=${4:-2}
for round in $(seq 1 "$rounds"); do
  for tree in "$old" "$new"; do
    echo "== round $round $tree"
    uptime
    KINGX_BIN=$kingx PYTHONDONTWRITEBYTECODE=1 /usr/bin/time -f "wall %e s, user %U s, sys %S s" \
      python3 "$tree/tests/deploy/test_sharding.py" --proxy haproxy 2>&1 | grep -E "^(ok|FAIL|wall)|passed"
  done
done
