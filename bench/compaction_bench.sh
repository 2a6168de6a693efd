#!/bin/sh
# Engine-level compaction measurement (issue 5): space amplification under
# sustained uniform overwrites with compaction running, and Reader::Get
# latency with and without compaction. Builds bench/compaction_bench.cc
# against an existing meson build's engine library (BUILD, default build),
# runs it with the given flags (see the .cc header), and stores the JSON in
# bench/results/<date>-compaction/.
#   bench/compaction_bench.sh [--keys 200000] [--value-bytes 300] [--segment-bytes 4194304]
#                             [--rounds 4] [--rate-mib 64] [--dir /tmp/kingx-compaction-bench]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
ninja -C "$build" engine/libkingx_engine.a >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
c++ -std=c++20 -O2 -I"$root" "$root/bench/compaction_bench.cc" "$build/engine/libkingx_engine.a" \
  $(pkg-config --libs libzstd libxxhash) -pthread -o "$out/compaction_bench"
dest="$root/bench/results/$(date -u +%Y-%m-%d)-compaction"
mkdir -p "$dest"
"$out/compaction_bench" "$@" | tee "$dest/compaction_bench.json"
echo "results in $dest/compaction_bench.json" >&2
