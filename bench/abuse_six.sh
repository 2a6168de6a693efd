#!/bin/bash
# Issue 11's abuse goal in one run: slowloris, slow bodies, slow reads, 10,000 idle connections, a
# garbage flood of 64, 256 and 1,024 connections and descriptor exhaustion, each in paired phases
# (bench/abuse_phases.py: alone, then abused, on the same process, wrk -t1 -c50 GETs of 100 B beside;
# the server and wrk on CPU 0, the abuse on CPU 1) against five servers in a shuffled order per case:
# NEW_BIN in the event model and in the thread model, each directly and behind nginx serving
# deploy/nginx-reverse-proxy.conf as shipped, and nginx serving the same files. Then OUT/table.md
# (bench/abuse_six_table.py: req/s ratio and CPU ratio per case and server, each worker's RSS
# against its budget). The log OUT/run.log has `uptime` at each case's start and end.
# PHASES (1) alone/abused pairs per server, SECS (5) seconds of wrk per phase, SETTLE (3) seconds of
# abuse before wrk (then at most 30 s more until its connections stop growing), SEED (1) the servers'
# order (each case its own shuffle from it).
# Usage: [PHASES=1 SECS=5 SETTLE=3 SEED=1] bench/abuse_six.sh OUT NEW_BIN
set -u
if [ $# -ne 2 ] || [ ! -x "$2" ]; then
  echo "usage: [PHASES=1 SECS=5 SETTLE=3 SEED=1] $0 OUT NEW_BIN (a kingx binary)" >&2
  exit 2
fi
OUT=$(realpath -m "$1")
NEW=$(realpath "$2")
cd "$(dirname "$0")/.." || exit 1
mkdir -p "$OUT"
S=(--kingx "event=$NEW" --kingx "threads=$NEW:threads" --kingx-proxied "event-proxied=$NEW"
   --kingx-proxied "threads-proxied=$NEW:threads" --nginx)
n=0
run() {
  name=$1
  shift
  n=$((n + 1))
  echo "$name start $(date -u +%H:%M:%S) $(uptime)"
  timeout 900 python3 bench/abuse_phases.py "${S[@]}" --rounds 1 --phases "${PHASES:-1}" --seconds "${SECS:-5}" \
    --settle "${SETTLE:-3}" --warmup 1 --seed "$((${SEED:-1} * 100 + n))" --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1
  echo "$name end $(date -u +%H:%M:%S) rc $? $(uptime)"
}
{
  run slowloris --case slowloris
  run slow-body --case slow-body
  run slow-read --case slow-read
  run idle-10k --case idle-10k
  run garbage-64 --case garbage --flood-conns 64
  run garbage-256 --case garbage --flood-conns 256
  run garbage-1024 --case garbage --flood-conns 1024
  run fd-exhaustion --case fd-exhaustion
} 2>&1 | tee -a "$OUT/run.log"
python3 bench/abuse_six_table.py "$OUT" > "$OUT/table.md"
cat "$OUT/table.md"
