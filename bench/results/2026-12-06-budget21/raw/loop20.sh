#!/bin/bash
# loop20.sh BIN LOG: the new black-box cases 20 times each under nice 19 (both models)
cd /work/wt/budget
BIN=$1; LOG=$2
: > $LOG
for i in $(seq 20); do
  echo "run $i $(uptime)" >> $LOG
  KINGX_BIN=$BIN nice -n 19 timeout 900 python3 /tmp/budget21/run_one.py test_abuse slow_uploads_leave_room_for_a_small_put body_budget_wait_ends_with_503_naming_the_setting 2>&1 | grep -E '^(ok|FAIL)|passed' >> $LOG
  KINGX_BIN=$BIN nice -n 19 timeout 900 python3 /tmp/budget21/run_one.py test_abuse slow_uploads_leave_room_for_a_small_put body_budget_wait_ends_with_503_naming_the_setting --model threads 2>&1 | grep -E '^(ok|FAIL)|passed' >> $LOG
  KINGX_BIN=$BIN nice -n 19 timeout 900 python3 /tmp/budget21/run_p2.py the_body_budget_reads_small_bodies_at_once_and_grants_whole_reservations_in_order 2>&1 | grep -E '^(ok|FAIL)|passed' >> $LOG
done
echo done >> $LOG
