#!/bin/bash
# Runs the black-box tests a compaction or crash change may slow (compaction, compaction_bound,
# crash_cycles, disk_full small_values) with one kingx binary and prints each one's duration and the
# load, so that two binaries can be compared in interleaved rounds.
# usage: bench/crash_blackbox_times.sh SCRATCH LABEL KINGX_BIN KINGX_TOOL_BIN   (logs: SCRATCH/bb-LABEL-*.log)
set -u
scratch=$1; LABEL=$2; BIN=$3; TOOL=$4
mkdir -p "$scratch"
cd "$(dirname "$0")/../tests/blackbox" || exit 1
for t in "compaction test_compaction.py" "compaction_bound test_compaction_bound.py" "crash_cycles test_crash_cycles.py" "disk_full_small_values test_disk_full.py small_values"; do
  set -- $t
  name=$1; shift
  s=$(date +%s.%N)
  KINGX_BIN=$BIN KINGX_TOOL_BIN=$TOOL PYTHONDONTWRITEBYTECODE=1 nice python3 "$@" > "$scratch/bb-$LABEL-$name.log" 2>&1
  rc=$?
  e=$(date +%s.%N)
  echo "$LABEL $name rc=$rc $(echo "$e - $s" | bc) s load $(cut -d' ' -f1 /proc/loadavg)"
done
