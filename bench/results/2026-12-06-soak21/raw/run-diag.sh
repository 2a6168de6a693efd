#!/bin/bash
name=$1; seed=$2; cycles=$3
out=/tmp/soak21/runs/$name
cd /work/wt/soak
cmd="python3 bench/compaction_crash_soak.py --cycles $cycles --seed $seed --sizes 4000,4000,4000,4000,65536,1048575,1048576 --live-mb 6 --burst-keys 4 --burst-kb 512 --bin /tmp/soak21/kingx-diag --server-arg=--log-level --server-arg=debug --out $out --keep-logs"
echo "$cmd" > /tmp/soak21/runs/$name-command.txt
(date -u; uptime) > /tmp/soak21/runs/$name-uptime.txt
$cmd > /tmp/soak21/runs/$name.out 2>&1
(date -u; uptime) >> /tmp/soak21/runs/$name-uptime.txt
