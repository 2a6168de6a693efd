#!/bin/sh
# Side-by-side rounds: today's main as "kingx" and again as "same" (an A/A pair: the run-to-run
# spread of one binary), nginx serving the same bytes (abuse.py after 28c0ab4). Usage: rounds.sh N TAG [ALTBIN]
R=$(dirname "$0")
ALT=${3:-/work/ref/today/kingx}
for i in $(seq 1 "$1"); do
  uptime
  python3 bench/abuse.py --cases fd-exhaustion,idle-10k --servers kingx,same,nginx \
    --kingx /work/ref/today/kingx --kingx-alt same="$ALT" --duration 8 --settle 6 --seed "$i" \
    --out "$R/$2-round$i" > "$R/$2-round$i.log" 2>&1
  uptime
done
