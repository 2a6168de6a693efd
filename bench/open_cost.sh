#!/bin/sh
# open_cost.sh: what one open of a database costs the engine alone, two
# kingx-tool binaries side by side: `kingx-tool stat` opens the database
# read-only (every hint loaded, every segment without an intact hint scanned,
# nothing written), prints its figures and exits. Per run: instructions and
# task-clock (perf stat, user+kernel), and the peak resident set
# (/usr/bin/time %M, KiB). Rounds alternate the order. The load average is
# printed with every run (figures on a busy machine are preliminary).
#
#   bench/open_cost.sh [--callgrind] NEW_TOOL OLD_TOOL DATA_DIR [ROUNDS] > out.txt
#
# Output: one line per run: round, which, instructions, task-clock ms, max RSS KiB, load.
# (Instructions need a PMU; in a VM without one perf says "<not supported>".)
# With --callgrind the instructions are counted by valgrind --tool=callgrind
# instead (user space only, the same on a busy machine; ~50x slower, so one
# round is enough): one line per run, round, which, instructions, load.
set -eu
counter=perf
if [ "${1:-}" = --callgrind ]; then counter=callgrind; shift; fi
new=$1 old=$2 data=$3 rounds=${4:-5}
[ "$counter" = callgrind ] && rounds=${4:-1}
run_callgrind() {
  tmp=$(mktemp)
  load=$(cut -d' ' -f1 /proc/loadavg)
  valgrind --tool=callgrind --callgrind-out-file="$tmp.out" "$2" stat --data "$data" > /dev/null 2> "$tmp.vg"
  ins=$(sed -n 's/.*Collected : //p' "$tmp.vg")
  echo "round $3 $1 instructions_user $ins load $load"
  rm -f "$tmp" "$tmp.out" "$tmp.vg"
}
run() {
  if [ "$counter" = callgrind ]; then run_callgrind "$@"; return; fi
  tmp=$(mktemp)
  load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f 'maxrss_kib %M' -o "$tmp.time" \
    perf stat -x, -e instructions,task-clock -o "$tmp.perf" "$2" stat --data "$data" > /dev/null 2>&1
  ins=$(grep ',instructions' "$tmp.perf" | cut -d, -f1)
  ms=$(grep ',task-clock' "$tmp.perf" | cut -d, -f1)
  rss=$(grep maxrss_kib "$tmp.time" | cut -d' ' -f2)
  echo "round $3 $1 instructions $ins task_clock_ms $ms maxrss_kib $rss load $load"
  rm -f "$tmp" "$tmp.time" "$tmp.perf"
}
r=0
while [ "$r" -lt "$rounds" ]; do
  if [ $((r % 2)) -eq 0 ]; then run new "$new" "$r"; run old "$old" "$r"
  else run old "$old" "$r"; run new "$new" "$r"; fi
  r=$((r + 1))
done
