#!/bin/bash
# usage: repro_loop.sh TAG KINGX RUNS OUT [LUA_DIR]   runs preload_repro.py RUNS times (1M keys), uptime beside each
tag=$1; kb=$2; runs=$3; out=$4; lua=${5:-}
here=$(dirname "$(readlink -f "$0")")
for i in $(seq 1 "$runs"); do
  w=/tmp/probe404-$tag-$i
  echo "run $tag-$i start $(date +%T) $(uptime)" >> "$out"
  timeout 900 python3 "$here/preload_repro.py" "$w" "$kb" 1000000 $lua >> "$out" 2>&1
  echo "run $tag-$i end $(date +%T) $(uptime)" >> "$out"
done
