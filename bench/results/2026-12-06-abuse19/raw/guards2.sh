#!/bin/bash
# The final code (keep-alive-busy condition): proxy per request with and without a flood, new vs ref.
cd "$(dirname "$0")/../../../.." || exit 1
R=bench/results/2026-12-06-abuse19
echo "proxy-flood start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 900 python3 bench/proxy_per_request.py --flood --seconds 8 --rounds 3 --seed 2 new=$NEW ref=$REF > $R/raw/proxy-flood-2.txt 2>&1
echo "proxy start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 900 python3 bench/proxy_per_request.py --seconds 8 --rounds 3 --seed 2 new=$NEW ref=$REF > $R/raw/proxy-noflood-2.txt 2>&1
echo "end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
