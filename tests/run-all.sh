#!/usr/bin/env bash
# The whole test suite, from a clean checkout on a fresh Debian 12 machine:
#   1. installs the Debian packages (deploy/setup-debian.sh, idempotent),
#   2. builds the normal tree (build/) and the sanitizer tree (build-asan/),
#   3. runs every test of build/ (unit, black-box, fuzz corpora, bench smoke)
#      and the unit tests again under ASan+UBSan,
#   4. ends with one plain line: "N passed, N failed".
# Heavy soak runs are behind KINGX_SOAK=1 (see tests/blackbox/README.md).
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

bash deploy/setup-debian.sh || { echo "0 passed, 1 failed"; exit 1; }

jobs=$(nproc 2>/dev/null || echo 2)
status=0

configure() {  # dir, extra meson args...
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}

build_ok=1
configure build -Dbuildtype=debugoptimized || build_ok=0
[ $build_ok = 1 ] && { ninja -C build -j"$jobs" >build.log 2>&1 || { tail -50 build.log; build_ok=0; }; }
asan_ok=1
configure build-asan -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false || asan_ok=0
[ $asan_ok = 1 ] && { ninja -C build-asan -j"$jobs" >build-asan.log 2>&1 || { tail -50 build-asan.log; asan_ok=0; }; }

rm -f build/meson-logs/testlog.json build-asan/meson-logs/testlog.json
if [ $build_ok = 1 ]; then
  meson test -C build --num-processes "$jobs" --print-errorlogs --no-rebuild || status=1
fi
if [ $asan_ok = 1 ]; then
  ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --suite unit --num-processes "$jobs" --print-errorlogs --no-rebuild || status=1
fi

summary=$(python3 - "$build_ok" "$asan_ok" <<'PY'
import json, sys, os
passed = failed = skipped = 0
for ok, d in zip(sys.argv[1:3], ("build", "build-asan")):
    if ok != "1":
        failed += 1            # a tree that does not build is a failure, not silence
        continue
    path = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(path):
        failed += 1
        continue
    for line in open(path):
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
)
echo "$summary"
case "$summary" in *" 0 failed"*) ;; *) status=1 ;; esac
exit $status
