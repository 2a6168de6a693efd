#!/bin/bash
# The six abuse cases of issue 11's goal (garbage at 64, 256 and 1,024 flood connections), each in paired
# phases (bench/abuse_phases.py: alone, abused, alone, abused on the same process, wrk -c50 beside), one
# round, five servers in a shuffled order per case: this main (NEW: a release build of 52baf80's code)
# and main at the session's start (/work/ref/s24/kingx, 8c6b542), each in both models, and nginx.
# Usage: NEW=... raw/six.sh OUT
cd /work/wt/abuse || exit 1
O=$1
S="--kingx new=$NEW --kingx ref=/work/ref/s24/kingx --kingx new-threads=$NEW:threads --kingx ref-threads=/work/ref/s24/kingx:threads --nginx"
run() {
  name=$1; shift
  echo "$name start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout 900 python3 bench/abuse_phases.py $S --rounds 1 --phases 2 --seconds 5 --settle 4 --seed 24 --out $O/$name "$@" > $O/$name.log 2>&1
  echo "$name end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
}
run garbage-256 --case garbage --flood-conns 256
run slowloris --case slowloris
run slow-body --case slow-body
run slow-read --case slow-read
run idle-10k --case idle-10k
run fd-exhaustion --case fd-exhaustion
run garbage-64 --case garbage --flood-conns 64
run garbage-1024 --case garbage --flood-conns 1024
