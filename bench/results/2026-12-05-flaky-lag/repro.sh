#!/usr/bin/env bash
# Runs one keyspace_lag_test case N times (bounded: per-run timeout), as CI
# runs the ASan unit tests, and keeps the key view's log (KS_LOG=1) of every
# failing run. Usage: repro.sh BINARY N OUTDIR [CASE]
set -u
bin=$1; n=$2; out=$3
case_name=${4:-"a view that fell behind is caught up from the puts its runs miss*"}  # Catch2: a comma separates filters
mkdir -p "$out"
work=$(mktemp -d)
pass=0; fail=0
for i in $(seq 1 "$n"); do
  if (cd "$work" && KS_LOG=1 ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 \
      UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 timeout 180 nice -n 5 "$bin" "$case_name" \
      >"$out/run.log" 2>&1); then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); cp "$out/run.log" "$out/fail-$i.log"
  fi
done
rm -f "$out/run.log"; rm -rf "$work"
echo "$(basename "$bin") x$n: $pass passed, $fail failed"
