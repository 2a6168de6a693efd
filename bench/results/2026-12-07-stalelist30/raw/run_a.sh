#!/bin/bash
# Part (a): listing 1M keys, fresh / overwritten once / three times / each compacted, ref vs new,
# one directory per process, the binaries' order alternating per round.
cd /tmp/lcomp-a
OUT=/work/wt/lcomp/bench/results/2026-12-07-stalelist30/raw/list-engine.txt
: > $OUT
for round in 1 2 3; do
  for d in fill1m ow1 ow3 ow1c ow3c; do
    if [ $((round % 2)) = 1 ]; then order="ref new"; else order="new ref"; fi
    for b in $order; do
      if [ $b = ref ]; then bin=./list_bench_ow; dir=$d; else bin=./list_bench_new; dir=$d-new; fi
      echo "== round $round dir $d bin $b $(uptime)" >> $OUT
      nice -n 10 $bin engine 100 $dir >> $OUT 2>&1
      echo "rc $?" >> $OUT
    done
  done
done
echo "== end $(uptime)" >> $OUT
