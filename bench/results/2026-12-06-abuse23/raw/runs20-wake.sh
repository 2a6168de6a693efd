#!/bin/bash
# 20 runs under nice -n 19 of the new threaded tests (debug build of a46b3c9): room_waiters_test and the black-box case.
cd /work/wt/abuse/tests/blackbox
for i in $(seq 1 20); do
  echo "run $i $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  nice -n 19 /work/wt/abuse/build/tests/src/room_waiters_test 2>&1 | tail -1
  KINGX_BIN=/tmp/abuse23/bin-wake/kingx-debug nice -n 19 timeout 600 python3 /tmp/abuse23/runcase.py test_abuse waiting_for_the_response --model threads 2>&1 | grep -E "^(ok|FAIL)"
done
