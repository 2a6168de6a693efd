#!/bin/bash
# audit4 probe 1: kingx's command line as --help states it (-t exit codes, --version, JSON comments,
# --commit-delay-us bounds, --data created one level only).
# Usage: bash p1_cli.sh KINGX_BIN
B=${1:-/work/ref/s29/kingx}
W=$(mktemp -d /tmp/audit4-p1.XXXX)
cd "$W"
run() { echo "\$ $*"; "$@" > out.txt 2>&1; rc=$?; sed 's/^/  /' out.txt | head -5; echo "  rc=$rc"; }
run "$B" --version
run "$B" -t --data "$W/d1"
ls -d "$W/d1" 2>/dev/null && echo "  (-t created $W/d1)"
run "$B" -t --data "$W/x/y/z"
ls -d "$W/x" 2>/dev/null && echo "  (-t created $W/x)"
run "$B" -t --bogus-flag
printf '{"//": "c", "//data": {"a": [1,2]}, "// x": 5, "workers": 1}' > c1.json
run "$B" -t --config c1.json --data "$W/d2"
printf '{"/x": 1}' > c2.json
run "$B" -t --config c2.json --data "$W/d2"
run "$B" -t --commit-delay-us 100000 --data "$W/d2"
run "$B" -t --commit-delay-us 100001 --data "$W/d2"
run "$B" -t --storage-timeout-ms 100 --commit-delay-us 25000 --data "$W/d2"
run "$B" -t --storage-timeout-ms 100 --commit-delay-us 25001 --data "$W/d2"
run "$B" -t --sync interval:0 --data "$W/d2"
run "$B" -t --sync interval: --data "$W/d2"
run "$B" -t --sync interval:100ms --data "$W/d2"
run "$B" -t --config "$W/missing.json"
run "$B" -t --workers 0 --data "$W/d2"
run "$B" -t --workers auto --threads 0 --model threads --data "$W/d2"
run "$B" -t --admin-listen off --data "$W/d2"
run "$B" -t --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:8080 --data "$W/d2"
run "$B" -t --access-log off --data "$W/d2"
run "$B" -t --error-log "$W/nodir/e.log" --data "$W/d2"
cd /; rm -rf "$W"
