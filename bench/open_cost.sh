#!/bin/sh
# open_cost.sh: what one open of a database costs the engine alone, two
# kingx-tool binaries side by side: `kingx-tool stat` opens the database
# read-only (every hint loaded, every segment without an intact hint scanned,
# nothing written), prints its figures and exits. Per run: instructions and
# task-clock (perf stat, user+kernel), and the peak resident set
# (/usr/bin/time %M, KiB). Rounds alternate the order. The load average is
# printed with every run (figures on a busy machine are preliminary).
#
#   bench/open_cost.sh NEW_TOOL OLD_TOOL DATA_DIR [ROUNDS] > out.txt
#
# Output: one line per run: round, which, instructions, task-clock ms, max RSS KiB, load.
# (Instructions need a PMU; in a VM without one perf says "<not supported>":
# count them with valgrind --tool=callgrind instead, user space only.)
set -eu
new=$1 old=$2 data=$3 rounds=${4:-5}
run() {
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
