#!/usr/bin/env bash
# The proxy guard tests with two release binaries, interleaved (A B B A per proxy), times to times.txt.
# Usage: run.sh NEW_BIN REF_BIN OUT_DIR   (run from the repository root)
new=$1 ref=$2 out=$3
mkdir -p "$out"
for proxy in nginx haproxy; do
  i=0
  for pair in "new $new" "ref $ref" "ref $ref" "new $new"; do
    set -- $pair; i=$((i + 1))
    start=$(date +%s.%N)
    KINGX_BIN=$2 python3 tests/deploy/test_sharding.py --proxy $proxy > "$out/$proxy-$1-$i.log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    echo "$proxy $1 run$i rc=$rc $(echo "$end - $start" | bc) s load $(cut -d' ' -f1 /proc/loadavg)" >> "$out/times.txt"
  done
done
