#!/bin/bash
# Interleaved crash soaks of a new binary beside an old one, one seed after another, with the command
# the soak results since 2026-12-06 use (bench/compaction_crash_soak.py runs each seed).
# usage: bench/compaction_soak_seeds.sh SCRATCH OLD_BIN NAME NEW_BIN SEED...
# Writes SCRATCH/runs/NAME-sSEED.out, -command.txt and -uptime.txt; stops after the seed in
# progress once SCRATCH/STOP exists.
set -u
scratch=$1; oldbin=$2; name=$3; newbin=$4; shift 4
cd "$(dirname "$0")/.." || exit 1
mkdir -p "$scratch/runs"
for seed in "$@"; do
  out=$scratch/runs/$name-s$seed
  cmd="python3 bench/compaction_crash_soak.py --cycles 200 --seed $seed --sizes 4000,4000,4000,4000,65536,1048575,1048576 --live-mb 6 --burst-keys 4 --burst-kb 512 --bin $newbin --compare-bin $oldbin --server-arg=--log-level --server-arg=debug --out $out --keep-logs"
  echo "$cmd" > "$out-command.txt"
  (date -u; uptime) > "$out-uptime.txt"
  $cmd > "$out.out" 2>&1
  (date -u; uptime) >> "$out-uptime.txt"
  [ -f "$scratch/STOP" ] && break
done
