#!/bin/sh
# 20 runs per model of the flood case under nice 19 beside 3 CPU hogs.
timeout 900 sh -c 'yes > /dev/null' & H1=$!
timeout 900 sh -c 'yes > /dev/null' & H2=$!
timeout 900 sh -c 'yes > /dev/null' & H3=$!
for i in $(seq 20); do
  for m in threads event; do
    echo "$i $m $(uptime | sed 's/.*average: //') $(KINGX_BIN=/work/wt/abuse/build/src/kingx timeout 300 nice -n 19 python3 one.py test_connection_flood_leaves_descriptors_for_the_storage $m 2>&1 | tail -1)"
  done
done
for i in 1 2 3 4 5; do
  echo "probe new $(KINGX_BIN=/work/wt/abuse/build/src/kingx timeout 120 nice -n 19 python3 probe3.py threads 2>&1 | grep sampled)"
  echo "probe ref $(KINGX_BIN=/work/ref/s19/kingx timeout 120 nice -n 19 python3 probe3.py threads 2>&1 | grep sampled)"
done
kill $H1 $H2 $H3
