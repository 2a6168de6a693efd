#!/bin/bash
# loop20.sh BIN MODEL LOG: 20 runs of the flood test under nice 19
for i in $(seq 20); do
  r=$(KINGX_BIN=$1 nice -n 19 timeout 900 python3 /tmp/abuse20/one.py a_garbage_flood_waits_in_the_backlog --model $2 2>&1 | grep -E "accepted in|FAIL|^ok" | cut -c1-300 | tr '\n' ' ')
  echo "$i $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg) $r" >> $3
done
echo done >> $3
