#!/bin/bash
# audit4 probe 2: kingx-tool as README "kingx-tool" and its usage say: put from FILE and stdin, get (exit 1
# if absent), delete of several keys ("deleted seq N" per key; exit 1 if any was absent, after deleting
# the others), --key-file raw bytes, compact with --compaction-dead-ratio R, stat --json, sizes refused
# "in the same words" as kingx.
# Usage: bash p2_tool.sh KINGX_TOOL KINGX
T=${1:-/work/ref/s29/kingx-tool}; B=${2:-/work/ref/s29/kingx}
W=$(mktemp -d /tmp/audit4-p2.XXXX); D=$W/db
run() { echo "\$ ${*/#$T/kingx-tool}"; "$@" > out.txt 2> err.txt; rc=$?; head -c 300 out.txt | sed 's/^/  out: /'; echo; sed 's/^/  err: /' err.txt | head -4; echo "  rc=$rc"; }
cd "$W"
printf 'hello' > v.txt
run "$T" --data "$D" put a v.txt
echo -n 'from stdin' | run "$T" --data "$D" put b -
echo -n 'implicit stdin' | run "$T" --data "$D" put c
run "$T" --data "$D" get a
run "$T" --data "$D" get b
run "$T" --data "$D" get c
run "$T" --data "$D" get nope
run "$T" --data "$D" delete a nope b
run "$T" --data "$D" get a
run "$T" --data "$D" get b
printf 'k\x00\xff/x' > key.bin
run "$T" --data "$D" --key-file key.bin put v.txt
run "$T" --data "$D" get 'k%00%FF/x'
run "$T" --data "$D" list
run "$T" --data "$D" list --encoding url
run "$T" --data "$D" stat --json
python3 -c 'import json,sys; json.load(open("out.txt")); print("  stat --json parses")' || echo "  stat --json does NOT parse"
run "$T" --data "$D" compact --compaction-dead-ratio 0.3
run "$T" --data "$D" --compaction-dead-ratio 0.3 compact
run "$T" --data "$D" compact --all
run "$T" --data "$D" --max-key-bytes 12Q stat
run "$B" -t --data "$W/d3" --max-key-bytes 12Q
run "$T" --data "$D" --segment-bytes 3M stat
run "$B" -t --data "$W/d3" --segment-bytes 3M
run "$T" --data "$D" list --limit 0
run "$T" --data "$D" list --limit 1001
cd /; rm -rf "$W"
