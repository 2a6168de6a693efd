#!/bin/bash
# 20 runs under nice -n 19 of every new or changed flood case (debug build of 278c9cc), while the machine is busy.
cd /work/wt/abuse/tests/blackbox
export KINGX_BIN=/work/wt/abuse/build/src/kingx
for i in $(seq 1 20); do
  echo "run $i $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  nice -n 19 timeout 600 python3 /tmp/abuse23/runcase.py test_abuse garbage_flood 2>&1 | grep -E "^(ok|FAIL)|passed"
  nice -n 19 timeout 600 python3 /tmp/abuse23/runcase.py test_abuse garbage_flood --model threads 2>&1 | grep -E "^(ok|FAIL)|passed"
  nice -n 19 timeout 600 python3 /tmp/abuse23/runcase.py test_promises4 flood 2>&1 | grep -E "^(ok|FAIL)|passed"
  nice -n 19 timeout 600 python3 /tmp/abuse23/runcase.py test_promises4 thread_model 2>&1 | grep -E "^(ok|FAIL)|passed"
done
