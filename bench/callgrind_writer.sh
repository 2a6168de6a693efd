#!/bin/bash
# callgrind_writer.sh WRITER_COST SYNC [DEPTH] [BATCHES]: the writer's user-space instructions (callgrind
# Ir) per PUT at fixed group-commit sizes (default 1,16,256), by bench/writer_cost on a fresh copy of
# TEMPLATE (default /tmp/writer23/tmpl: fill_db --keys 1000000 --value-bytes 100), --sync SYNC,
# --sync-depth DEPTH (default 1). Per batch size: the writer loop thread's Ir per PUT (the whole
# per-PUT path of the writer: decide, encode, write, publish, answer; the fdatasync too at depth 1)
# and the driver's (the worker's queue and ring side); see bench/writer_cost.cc. Batches are exactly B ops whatever valgrind's pace, so the figures repeat: compare
# writer_cost binaries of two trees in the same way. OPS (default 4096) and WARMUP (1024) per size;
# ANNOTATE=DIR keeps each dump's callgrind_annotate --inclusive=yes output there; KEEP=DIR keeps the
# dumps themselves (named after their label, for bench/callgrind_functions.py). CACHE_SIM=1 adds
# callgrind's cache simulation: each line then also gives the loop's simulated first-level and
# last-level data read misses per PUT (D1mr, DLmr: deterministic, the load does not move them).
# KEYS=N passes writer_cost --keys N (default: the template's 1M keys, every PUT an overwrite; a
# number far above them, e.g. 1000000000000, makes nearly every PUT a new key).
# KEYVIEW=1 measures the key view's merges instead (the keyspace thread's Keyspace::MergeRuns and
# all it calls: the index probes, the resolving reads, the run written; callgrind collects nothing
# else): one line with the PUTs of every round, the merges that completed meanwhile, the run entries
# they read, the entries the collected merges read (entries_read, a cut-short last merge included),
# their Ir per PUT and per entry read (the tail flushes a long merge makes meanwhile
# taken out: flush_Ir). Merges are decided by the key view's own policy
# (size classes; the "settled" merge after settle_ms without a tail flush, which valgrind's pace
# can trigger): compare trees by Ir per entry read, and per PUT with the merge counts beside it.
set -euo pipefail
BIN=$1; SYNC=$2; DEPTH=${3:-1}; BATCHES=${4:-1,16,256}
TEMPLATE=${TEMPLATE:-/tmp/writer23/tmpl}
[ -d "$TEMPLATE" ] || { echo "$0: no template database $TEMPLATE: make it with fill_db --data $TEMPLATE --keys 1000000 --value-bytes 100 (build-release/bench/fill_db), or set TEMPLATE" >&2; exit 2; }
D=$(mktemp -d "${TMPDIR:-/tmp}/cg_writer.XXXX")
trap 'rm -rf "$D"' EXIT
cp -r "$TEMPLATE" "$D/data"
# Opened once outside valgrind: builds what a first open builds (the sorted key view), so that the
# measured open finds the database as a running server leaves it.
"$BIN" --batches 1 --ops 1 --warmup-ops 0 -- --data "$D/data" --sync "$SYNC" --sync-depth "$DEPTH" \
  --error-log "$D/err0.log" --access-log off > /dev/null
if [ -n "${KEYVIEW:-}" ]; then
  valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \
    --toggle-collect='kingx::engine::Keyspace::MergeRuns(*' --callgrind-out-file="$D/cg.out" "$BIN" \
    --batches "$BATCHES" --ops "${OPS:-4096}" --warmup-ops "${WARMUP:-1024}" ${KEYS:+--keys "$KEYS"} -- \
    --data "$D/data" --sync "$SYNC" --sync-depth "$DEPTH" --error-log "$D/err.log" --access-log off > "$D/out.log" 2> "$D/valgrind.log" || {
    cat "$D/out.log" "$D/valgrind.log" >&2; exit 1; }
  # Every thread's dumps and end-of-run files: only the merges' instructions were collected.
  ir=$(for f in "$D"/cg.out*; do
         awk '/^events:/ { for (i = 2; i <= NF; ++i) if ($i == "Ir") c = i } /^summary:/ { print $c; exit }' "$f"
       done | awk '{ t += $1 } END { printf "%d", t }')
  # A long merge flushes the tails now and then (how often depends on the pace): that work is the
  # flushes', so it is taken out of the merges' figure (and shown as flush_Ir). The entries the
  # collected merges read are the calls of KeyRun::Iterator::DecodeAt (one per entry, and one per
  # input's first): exact even for a merge that the end of the run cut short, which the merges= and
  # entries_merged= counters (completed merges only) leave out.
  HERE=$(dirname "$0")
  calls() {  # calls() FILE NAME: the calls of the function whose name starts with NAME, and their inclusive Ir
    python3 "$HERE/callgrind_functions.py" "$1" 1 --top 1000 --callers "$2" |
      awk -v name="-> $2" 'index($0, name) { c += $1; i += $3 } END { printf "%d %d\n", c, i }'
  }
  flush=0; nexts=0
  for f in "$D"/cg.out-*; do
    read -r _ n < <(calls "$f" "kingx::engine::Keyspace::FlushFrozenTail()")
    flush=$((flush + n))
    read -r n _ < <(calls "$f" "kingx::engine::KeyRun::Iterator::DecodeAt(")
    nexts=$((nexts + n))
    if [ -n "${ANNOTATE:-}" ]; then
      mkdir -p "$ANNOTATE"
      python3 "$HERE/callgrind_functions.py" "$f" "$nexts" --top 60 > "$ANNOTATE/keyview-$(basename "$f").txt" || true
    fi
  done
  sed -n 's/^keyview //p' "$D/out.log" | awk -v ir="$((ir - flush))" -v flush="$flush" -v nexts="$nexts" -v sync="$SYNC" -v depth="$DEPTH" '
    { for (i = 1; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
      printf "sync %s depth %s puts %d merges %d entries_merged %d entries_read %d merge_Ir %d merge_Ir/put %.0f merge_Ir/entry %.0f flush_Ir %d\n",
             sync, depth, v["puts"], v["merges"], v["entries_merged"], nexts, ir, ir / v["puts"],
             nexts ? ir / nexts : 0, flush }'
  grep -h "batches=" "$D/out.log" >&2
  exit 0
fi
CACHE_ARGS=()
[ -n "${CACHE_SIM:-}" ] && CACHE_ARGS=(--cache-sim=yes)
valgrind --tool=callgrind --separate-threads=yes "${CACHE_ARGS[@]}" --callgrind-out-file="$D/cg.out" "$BIN" --batches "$BATCHES" \
  --ops "${OPS:-4096}" --warmup-ops "${WARMUP:-1024}" ${KEYS:+--keys "$KEYS"} -- --data "$D/data" --sync "$SYNC" --sync-depth "$DEPTH" \
  --error-log "$D/err.log" --access-log off > "$D/out.log" 2> "$D/valgrind.log" || {
  cat "$D/out.log" "$D/valgrind.log" >&2; exit 1; }
# One file per dump: cg.out.<dump>-<thread>, each labelled "batch=B ops=N side=loop|driver".
for f in "$D"/cg.out.*-*; do
  label=$(sed -n 's/^desc: Trigger: Client Request: //p' "$f")
  case $label in batch=*) ;; *) continue ;; esac
  # Ir, D1mr and DLmr by their place in the events line (the last two 0 without the simulation).
  counts=$(awk '/^events:/ { for (i = 2; i <= NF; ++i) col[$i] = i }
                /^summary:/ { print $(col["Ir"]), (col["D1mr"] ? $(col["D1mr"]) : 0), (col["DLmr"] ? $(col["DLmr"]) : 0); exit }' "$f")
  echo "$label $counts"
  if [ -n "${ANNOTATE:-}" ]; then
    mkdir -p "$ANNOTATE"
    callgrind_annotate --inclusive=yes "$f" > "$ANNOTATE/$(echo "${label// /_}" | tr -d =).txt" 2>/dev/null || true
  fi
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    cp "$f" "$KEEP/$(echo "${label// /_}" | tr -d =).out"
  fi
done | awk -v sync="$SYNC" -v depth="$DEPTH" -v cache="${CACHE_SIM:-}" '
  { split($1, b, "="); split($2, o, "="); split($3, s, "="); k = b[2] " " s[2]
    ir[k] = $4 / o[2]; d1[k] = $5 / o[2]; dl[k] = $6 / o[2]; ops[b[2]] = o[2]
    if (!(b[2] in seen)) { seen[b[2]] = 1; order[++n] = b[2] } }
  END { for (i = 1; i <= n; ++i) { k = order[i]
          printf "sync %s depth %s batch %s ops %d loop_Ir/put %.0f driver_Ir/put %.0f", sync, depth, k, ops[k],
                 ir[k " loop"], ir[k " driver"]
          if (cache) printf " loop_D1mr/put %.1f loop_DLmr/put %.1f", d1[k " loop"], dl[k " loop"]
          printf "\n" } }'
grep -h "batches=" "$D/out.log" >&2
