#!/bin/sh
# The open's scan cost of the scan changes (seq_floor bound, header re-check)
# beside the previous main: kingx-tool stat (a read-only open) under callgrind.
# OLD: /work/ref/s24/kingx-tool (main 8c6b542, release); NEW: a release build
# (meson setup build-release -Dbuildtype=release -Dtests=false -Dkill_points=false).
# DB: /work/ref/s24/fill_db --data DB --keys 300000 --value-bytes 100;
# DB without hints: the same, then rm DB/*.hint (every segment scanned).
set -e
for r in 1 2; do
  for v in old new; do
    B=$OLD; [ $v = new ] && B=$NEW
    L=$(uptime | sed 's/.*average: //')
    valgrind --tool=callgrind --callgrind-out-file=cg.$v.$r $B --data "$DB" stat > out.$v.$r 2> err.$v.$r
    echo "$v round $r load $L Ir $(grep -a Collected err.$v.$r | awk '{print $4}')"
  done
done
