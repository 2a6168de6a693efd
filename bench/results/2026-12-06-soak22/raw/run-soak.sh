#!/bin/bash
# Interleaved soaks, new vs old, one seed after another: run-soak.sh NAME NEWBIN SEED...
name=$1; newbin=$2; shift 2
cd /work/wt/soak
for seed in "$@"; do
  out=/tmp/soak22/runs/$name-s$seed
  cmd="python3 bench/compaction_crash_soak.py --cycles 200 --seed $seed --sizes 4000,4000,4000,4000,65536,1048575,1048576 --live-mb 6 --burst-keys 4 --burst-kb 512 --bin $newbin --compare-bin /tmp/soak22/kingx-db9bab8 --server-arg=--log-level --server-arg=debug --out $out --keep-logs"
  echo "$cmd" > $out-command.txt
  (date -u; uptime) > $out-uptime.txt
  $cmd > $out.out 2>&1
  (date -u; uptime) >> $out-uptime.txt
  [ -f /tmp/soak22/STOP ] && break
done
