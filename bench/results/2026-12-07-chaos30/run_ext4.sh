#!/bin/bash
# The chaos soak with its data on ext4 over a loop device (real fdatasyncs and ENOSPC), release build,
# into OUTDIR/NAME.log with `uptime` before and after: bash bench/results/2026-12-07-chaos30/run_ext4.sh OUTDIR
set -u
OUT=${1:?OUTDIR}
mkdir -p "$OUT"
BIN=build-release/src/kingx
TOOL=build-release/engine/tool/kingx-tool
run() { # NAME ARGS...
  local name=$1; shift
  { echo "# $(date -u +%H:%M:%S) uptime: $(uptime)"; echo "# $(git rev-parse --short HEAD) python3 bench/chaos_soak.py --bin $BIN --tool $TOOL $*"
    nice -n 10 python3 bench/chaos_soak.py --bin $BIN --tool $TOOL "$@"; echo "# exit $?; $(date -u +%H:%M:%S) uptime: $(uptime)"; } > "$OUT/$name.log" 2>&1
}
[ -e "$OUT/seed601-ext4.log" ] || run seed601-ext4 --seconds 540 --seed 601 --fs ext4
run seed602-ext4-threads --seconds 420 --seed 602 --fs ext4 --model threads --workers 2
