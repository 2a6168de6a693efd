#!/bin/sh
# The open's scan cost of the header re-check, now done only after a re-read,
# beside the reference main (759bd6d): kingx-tool stat (a read-only open)
# under callgrind, on one database with its hints and on a copy without any
# (every segment scanned). Instruction counts are deterministic: the machine's
# load does not move them.
# OLD: /work/ref/s25/kingx-tool (main 759bd6d, release); NEW: a release build
# (meson setup build-release -Dbuildtype=release -Dtests=false -Dkill_points=false).
# DB: /work/ref/s25/fill_db --data DB --keys 300000 --value-bytes 100;
# NOHINT: a copy of DB, then rm NOHINT/*.hint.
set -e
for r in 1 2; do
  for db in hinted nohint; do
    D=$DB; [ $db = nohint ] && D=$NOHINT
    for v in old new; do
      B=$OLD; [ $v = new ] && B=$NEW
      L=$(uptime | sed 's/.*average: //')
      valgrind --tool=callgrind --callgrind-out-file=cg.$db.$v.$r $B --data "$D" stat > out.$db.$v.$r 2> err.$db.$v.$r
      echo "$db $v round $r load $L Ir $(grep -a Collected err.$db.$v.$r | awk '{print $4}') $(head -1 out.$db.$v.$r)"
    done
  done
done
