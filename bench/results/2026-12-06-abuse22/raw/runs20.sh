#!/bin/bash
# 20 runs of the new/changed flood cases under nice -n 19 (both models).
cd /work/wt/abuse
export KINGX_BIN=/tmp/abuse22/kingx-debug-p1
for i in $(seq 1 20); do
  echo "run $i $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
  nice -n 19 timeout 600 python3 /tmp/abuse22/runcases.py test_abuse a_garbage_flood_waits_in_the_backlog 2>&1 | grep -E "^ok|^FAIL|connections accepted"
  nice -n 19 timeout 600 python3 /tmp/abuse22/runcases.py test_abuse a_garbage_flood_waits_in_the_backlog --model threads 2>&1 | grep -E "^ok|^FAIL|connections accepted"
  nice -n 19 timeout 600 python3 /tmp/abuse22/runcases.py test_promises4 a_refused_connection_during_a_garbage_flood_is_parked_after_a_4_kib_first_read,the_same_in_the_thread_model,a_flood_is_half_of_the_last_64_endings_refused_before_any_request 2>&1 | grep -E "^ok|^FAIL"
  nice -n 19 timeout 600 python3 /tmp/abuse22/runcases.py test_promises5 with_no_busy_keep_alive_client_a_flood_meters_nothing,clients_opening_one_connection_per_request_meet_the_flood_unmetered,the_same_in_the_thread_model 2>&1 | grep -E "^ok|^FAIL"
done
