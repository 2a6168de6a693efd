#!/bin/bash
# 20 runs of the new case per model under nice 19 (the machine busy with others' builds and tests).
cd /work/wt/budget
for i in $(seq 1 20); do
  for m in "" "--model threads"; do
    KINGX_BIN=build/src/kingx timeout 900 nice -n 19 python3 /tmp/budget23/one.py test_abuse never_keep $m 2>&1 | grep -a -E "^(ok|FAIL)" | sed "s/^/run $i ${m:-event}: /"
  done
  uptime
done
