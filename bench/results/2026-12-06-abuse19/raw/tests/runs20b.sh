#!/bin/sh
# 20 runs under nice 19 of the two cases, debug build of 2f5cb1a (copied), beside whatever runs.
B=/tmp/abuse19/bin-dbg2/kingx
for i in $(seq 20); do
  echo "$i garbage event $(cut -d' ' -f1-3 /proc/loadavg) $(KINGX_BIN=$B timeout 400 nice -n 19 python3 one.py test_a_garbage_flood_waits_in_the_backlog 2>&1 | tail -2 | tr '\n' ' ')"
  for m in threads event; do
    echo "$i descriptors $m $(cut -d' ' -f1-3 /proc/loadavg) $(KINGX_BIN=$B timeout 300 nice -n 19 python3 one.py test_connection_flood_leaves_descriptors_for_the_storage $m 2>&1 | tail -1)"
  done
done
