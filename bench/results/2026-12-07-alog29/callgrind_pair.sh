#!/bin/bash
# Instructions per keep-alive GET (bench/callgrind_per_request.sh), main before the access log's
# completion hook (BASE) beside main with it (NEW), interleaved, both models, access log on and off.
# usage: bench/results/2026-12-07-alog29/callgrind_pair.sh BASE_KINGX NEW_KINGX [ROUNDS]
BASE=$1; NEW=$2; ROUNDS=${3:-2}
LOG=$(mktemp -d)
for rep in $(seq $ROUNDS); do
  for cfg in "event+log:--model event --access-log $LOG/access.log" \
             "threads+log:--model threads --threads 4 --access-log $LOG/access.log" \
             "event:--model event" "threads:--model threads --threads 4"; do
    name=${cfg%%:*}; args=${cfg#*:}
    for b in "$BASE" "$NEW"; do
      echo "== $name $b | $(uptime)"
      nice -n 10 "$(dirname "$0")/../../callgrind_per_request.sh" "$b" keepalive $args 2>&1 | tail -1
      rm -f "$LOG/access.log"
    done
  done
done
rm -rf "$LOG"
