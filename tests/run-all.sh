#!/usr/bin/env bash
# The whole test suite, from a clean checkout on a fresh Debian 12 machine:
#   1. installs the Debian packages (deploy/setup-debian.sh --tests: building, the tests, and
#      the nginx and HAProxy the deploy tests run; then bench/install-peers.sh for the benchmark
#      peers; both idempotent, neither leaves a service enabled or running; promtool is
#      unpacked from Debian's .deb by tests/tools/promtool.sh, not installed),
#   2. builds the normal tree (build/),
#   3. runs every test of build/ (unit, black-box, fuzz corpora, bench smoke) while, beside
#      them at the lowest CPU and I/O priority, the sanitizer trees are built (build-asan/,
#      build-tsan/) and the unit tests run again under ASan+UBSan; then the API suite
#      against the TSan binary,
#   4. ends with one plain line: "N passed, N failed".
# Heavy soak runs are behind KINGX_SOAK=1 (see tests/blackbox/README.md).
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
# Each phase's end, in seconds since the start, so that a run's log shows where its time went
# (the sanitizer chain's lines come out with its output, after the foreground's).
t0=$(date +%s)
phase() { echo "run-all: $1 done at +$(( $(date +%s) - t0 ))s"; }

bash deploy/setup-debian.sh --tests || { echo "0 passed, 1 failed"; exit 1; }
# The benchmark smoke test runs the peers (nginx, redis, webdis, memcached) and the load
# generators (wrk, h2load); bench/'s own install step brings them, with no service left enabled.
bash bench/install-peers.sh || { echo "0 passed, 1 failed"; exit 1; }
# promtool for the /metrics test: unpacked from Debian's prometheus .deb into a private
# directory, never installed (the package would bring a prometheus service).
bash tests/tools/promtool.sh >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
phase "installing"

jobs=$(nproc 2>/dev/null || echo 2)
status=0

# Warnings are errors in every tree here (and so in CI); the project default
# leaves them warnings, for users' and packagers' builds.
configure() {  # dir, extra meson args...
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" -Dwerror=true "$@" >/dev/null
  else
    meson setup "$dir" -Dwerror=true "$@" >/dev/null
  fi
}

build_ok=1
configure build -Dbuildtype=debugoptimized || build_ok=0
[ $build_ok = 1 ] && { ninja -C build -j"$jobs" >build.log 2>&1 || { tail -50 build.log; build_ok=0; }; }
phase "building build/"
logs=$(mktemp -d)
run_suite() {  # tree, suite, processes, label, extra meson test arguments...
  local tree=$1 suite=$2 procs=$3 label=$4; shift 4
  local log
  rm -f "$tree"/meson-logs/testlog*.json
  meson test -C "$tree" --suite "$suite" --num-processes "$procs" --print-errorlogs --no-rebuild "$@" || status=1
  # meson names the log after the wrapper when there is one (testlog-low-priority.json).
  log=$(ls "$tree"/meson-logs/testlog*.json 2>/dev/null | head -n 1)
  if [ -n "$log" ]; then
    cp "$log" "$logs/$label.json"
  else
    echo '{"name": "'"$label"'", "result": "FAIL"}' >"$logs/$label.json"
  fi
}
# The sanitizer trees: built, and the ASan unit tests run, in the background while build/'s
# suites run, in a session of their own at the lowest CPU and I/O priority
# (tests/tools/low-priority: nice alone does not reach across the scheduler's per-session
# groups, and meson test gives each test a session) so that the servers under test keep the
# cores they ask for. The sanitizer tests have no timing to keep; their timeouts are
# stretched for the smaller share they get. Its output is shown when it is done.
sanitizers() {
  local asan_ok=1 tsan_ok=1
  status=0
  configure build-asan -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false || asan_ok=0
  [ $asan_ok = 1 ] && { ninja -C build-asan -j"$jobs" >build-asan.log 2>&1 || { tail -50 build-asan.log; asan_ok=0; }; }
  phase "building build-asan/"
  if [ $asan_ok = 1 ]; then
    ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      run_suite build-asan unit "$jobs" asan-unit --timeout-multiplier 3 --wrapper "$top/tests/tools/low-priority"
    phase "ASan unit tests"
  else
    echo '{"name": "build-asan", "result": "FAIL"}' >"$logs/build-asan.json"
  fi
  # ThreadSanitizer: the binary alone (the thread-pool model must be TSan-clean
  # in --single-process mode), exercised by the API suite below.
  # cpp_args emptied: a tree configured earlier with -Wno-tsan must warn (and so fail) again.
  configure build-tsan -Dbuildtype=debugoptimized -Db_sanitize=thread -Dtests=false -Dcpp_args= || tsan_ok=0
  [ $tsan_ok = 1 ] && { ninja -C build-tsan -j"$jobs" src/kingx >build-tsan.log 2>&1 || { tail -50 build-tsan.log; tsan_ok=0; }; }
  phase "building build-tsan/"
  echo $tsan_ok >"$logs/tsan_ok"
  return $status
}
export -f configure run_suite sanitizers phase
export jobs logs top t0
setsid -w tests/tools/low-priority bash -c sanitizers >"$logs/sanitizers.out" 2>&1 &
sanitizers_pid=$!

# Unit tests in parallel; black-box and benchmark-smoke tests one at a time:
# each starts servers that want both cores, and they must not starve each other.
if [ $build_ok = 1 ]; then
  run_suite build unit "$jobs" unit
  phase "unit tests"
  run_suite build blackbox 1 blackbox
  phase "black-box tests"
  run_suite build bench 1 bench
  phase "bench smoke tests"
else
  echo '{"name": "build", "result": "FAIL"}' >"$logs/build.json"
fi
wait $sanitizers_pid || status=1
phase "waiting for the sanitizer chain"
cat "$logs/sanitizers.out"
tsan_ok=$(cat "$logs/tsan_ok" 2>/dev/null || echo 0)

# The API suite against the TSan binary, one process per model. A race
# report makes the server exit non-zero (halt_on_error), which fails the run.
for model in event threads; do
  label="tsan-single-process-$model"
  if [ $tsan_ok = 1 ] && TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$top/tests/tsan.supp" \
      KINGX_BIN="$top/build-tsan/src/kingx" timeout 600 python3 tests/blackbox/test_api.py \
      --single-process --model "$model" >"$logs/$label.log" 2>&1; then
    echo '{"name": "'"$label"'", "result": "OK"}' >"$logs/$label.json"
    echo "$label: OK"
  else
    echo '{"name": "'"$label"'", "result": "FAIL"}' >"$logs/$label.json"
    echo "$label: FAIL"; tail -40 "$logs/$label.log"; status=1
  fi
done

phase "TSan API runs"

summary=$(python3 - "$logs" <<'PY'
import json, sys, os, glob
passed = failed = skipped = 0
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1          # FAIL, TIMEOUT, ERROR, or a tree that did not build
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
)
echo "$summary"
case "$summary" in *" 0 failed"*) ;; *) status=1 ;; esac
exit $status
