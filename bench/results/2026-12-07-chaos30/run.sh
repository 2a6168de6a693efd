#!/bin/bash
# The chaos soak runs of this directory, one after another, each into NAME.log
# with `uptime` before and after. Run from the top of the tree, as root (the
# soak mounts a tmpfs): bash bench/results/2026-12-07-chaos30/run.sh OUTDIR
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
run seed401-event-w2 --seconds 600 --seed 401
run seed402-threads --seconds 420 --seed 402 --model threads --workers 1
run seed403-event-w3 --seconds 480 --seed 403 --workers 3
run seed404-event-w1 --seconds 420 --seed 404 --workers 1
