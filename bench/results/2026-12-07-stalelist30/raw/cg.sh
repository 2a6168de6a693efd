#!/bin/bash
# Listing instructions (callgrind, only inside KeyLister::List) per database state, ref engine vs new.
cd /tmp/lcomp-c
OUT=/work/wt/lcomp/bench/results/2026-12-07-stalelist30/raw/callgrind-list.txt
: > $OUT
for d in fill100k ow1 ow3 ow1c ow3c; do
  for b in ref new; do
    if [ $b = ref ]; then dir=$d; else dir=$d-new; fi
    f=/tmp/lcomp-c/cg-$d-$b.out
    echo "== $d $b $(uptime)" >> $OUT
    nice -n 10 valgrind --tool=callgrind --separate-threads=yes "--toggle-collect=*KeyLister::List(*" \
      --callgrind-out-file=$f ./list_bench_$b engine 1 $dir >> $OUT 2>/tmp/lcomp-c/cg-$d-$b.err
    echo "rc $?" >> $OUT
    for t in $f*; do echo "$t $(grep -E '^(summary|totals):' $t)"; done >> $OUT
  done
done
echo "== end $(uptime)" >> $OUT
