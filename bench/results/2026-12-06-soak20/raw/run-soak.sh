#!/bin/bash
# One interleaved soak, new vs old: run-soak.sh NAME SEED [extra args]
name=$1; seed=$2; shift 2
out=/tmp/soak20/runs/$name
cd /work/wt/soak
cmd="python3 bench/compaction_crash_soak.py --cycles 200 --seed $seed --sizes 4000,4000,4000,4000,65536,1048575,1048576 --live-mb 6 --burst-keys 4 --burst-kb 512 --bin /tmp/soak20/new/kingx --compare-bin /tmp/soak20/old/kingx --server-arg=--log-level --server-arg=debug --out $out --keep-logs $*"
echo "$cmd" > /tmp/soak20/runs/$name-command.txt
(date -u; uptime) > /tmp/soak20/runs/$name-uptime.txt
$cmd > /tmp/soak20/runs/$name.out 2>&1
(date -u; uptime) >> /tmp/soak20/runs/$name-uptime.txt
