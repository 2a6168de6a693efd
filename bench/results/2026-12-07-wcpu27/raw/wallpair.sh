#!/bin/bash
# wallpair.sh ROUNDS SYNC BATCH OPS BIN... : writer_cost wall us/PUT per binary, interleaved rounds, each on a fresh copy of the 1M-key template
R=$1; SYNC=$2; B=$3; OPS=$4; shift 4
for r in $(seq 1 $R); do
  for bin in "$@"; do
    D=$(mktemp -d /tmp/wcpu-wp.XXXX); cp -r /tmp/wcpu-tmpl/d1m-kv $D/data
    out=$($bin --batches $B --ops $OPS --warmup-ops 20000 -- --data $D/data --sync $SYNC --sync-depth 1 --error-log $D/err.log --access-log off 2>/dev/null | grep -oE "(wall|loop_cpu)_us_per_put=[0-9.]*" | tr "\n" " ")
    echo "round $r $(basename $bin) batch $B sync $SYNC $out load $(cut -d' ' -f1 /proc/loadavg)"
    rm -rf $D
  done
done
