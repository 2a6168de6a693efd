#!/bin/bash
# Guards for the flood metering, release builds side by side, interleaved:
# the proxy sharding tests' durations (tests/deploy/test_sharding.py, nginx and HAProxy in front,
# one connection per request upstream), then bench/proxy_per_request.py without and with a flood.
# Usage: NEW=... REF=... guards.sh
cd "$(dirname "$0")/../../../.." || exit 1
R=bench/results/2026-12-06-abuse19
for round in 1 2; do
  for proxy in nginx haproxy; do
    for name in ref new; do
      [ $name = ref ] && BIN=$REF || BIN=$NEW
      s=$(date +%s.%N)
      KINGX_BIN=$BIN timeout 600 python3 tests/deploy/test_sharding.py --proxy $proxy > $R/raw/sharding-$proxy-$name-$round.log 2>&1
      rc=$?
      e=$(date +%s.%N)
      echo "sharding $proxy $name round $round rc $rc seconds $(echo "$e - $s" | bc) load $(cut -d' ' -f1-3 /proc/loadavg)"
    done
  done
done
echo "proxy start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 900 python3 bench/proxy_per_request.py --seconds 8 --rounds 3 new=$NEW ref=$REF > $R/raw/proxy-noflood.txt 2>&1
echo "proxy-flood start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 900 python3 bench/proxy_per_request.py --flood --seconds 8 --rounds 3 new=$NEW ref=$REF > $R/raw/proxy-flood.txt 2>&1
echo "end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
