#!/bin/sh
# The open after a clean close, new vs old, each on a database its own version filled and closed:
# user-space instructions (callgrind) of `kingx-tool stat` (a read-only open), interleaved rounds.
#   NEW=<kingx-tool of the new tree> OLD=/work/ref/s23/kingx-tool NEWDB=<filled by the new fill_db> OLDDB=<by the old> sh run.sh
# Databases: fill_db --data DIR --keys 1000000 --value-bytes 100 (each version's own fill_db).
set -eu
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" stat --data "$2" 2>&1 | grep -o 'Collected : [0-9]*' | grep -o '[0-9]*'; }
for r in 0 1; do
  echo "round $r load $(cut -d' ' -f1 /proc/loadavg) new_on_new_db $(ir $NEW $NEWDB) old_on_old_db $(ir $OLD $OLDDB) new_on_old_db $(ir $NEW $OLDDB)"
done
