#!/bin/bash
# Runs compaction, compaction_bound, crash_cycles, disk_full_small_values with one kingx binary; prints durations.
# usage: blackbox-times.sh LABEL KINGX_BIN KINGX_TOOL_BIN
LABEL=$1; BIN=$2; TOOL=$3
cd /work/wt/soak/tests/blackbox
for t in "compaction test_compaction.py" "compaction_bound test_compaction_bound.py" "crash_cycles test_crash_cycles.py" "disk_full_small_values test_disk_full.py small_values"; do
  set -- $t
  name=$1; shift
  s=$(date +%s.%N)
  KINGX_BIN=$BIN KINGX_TOOL_BIN=$TOOL PYTHONDONTWRITEBYTECODE=1 nice python3 "$@" > /tmp/soak22/bb-$LABEL-$name.log 2>&1
  rc=$?
  e=$(date +%s.%N)
  echo "$LABEL $name rc=$rc $(echo "$e - $s" | bc) s load $(cut -d' ' -f1 /proc/loadavg)"
done
