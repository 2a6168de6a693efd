#!/bin/bash
# The chaos soak with faults of the file seam (a debug build: kill points compiled in), each into
# OUTDIR/NAME.log with `uptime` before and after: bash bench/results/2026-12-07-chaos30/run_seam.sh OUTDIR
set -u
OUT=${1:?OUTDIR}
mkdir -p "$OUT"
BIN=build/src/kingx
TOOL=build/engine/tool/kingx-tool
run() { # NAME ARGS...
  local name=$1; shift
  { echo "# $(date -u +%H:%M:%S) uptime: $(uptime)"; echo "# $(git rev-parse --short HEAD) python3 bench/chaos_soak.py --bin $BIN --tool $TOOL $*"
    nice -n 10 python3 bench/chaos_soak.py --bin $BIN --tool $TOOL "$@"; echo "# exit $?; $(date -u +%H:%M:%S) uptime: $(uptime)"; } > "$OUT/$name.log" 2>&1
}
run seed501-sync --seconds 300 --seed 501 --fail-point 'kingx-writer/sync@seg-:1+'
run seed502-map --seconds 300 --seed 502 --fail-point 'kingx-worker/map@.kxd:1+'
