#!/usr/bin/env bash
# Provides promtool (Prometheus' metrics linter) for the tests without installing the
# prometheus package: Debian ships promtool only inside `prometheus`, whose installation
# would also add a prometheus service. Instead the .deb is downloaded (apt-get download,
# Debian's own registry) and unpacked into a private directory; nothing is installed, no
# service file reaches the system, dpkg's database is untouched.
#
#   tests/tools/promtool.sh            fetch if needed; print the path of promtool
#   tests/tools/promtool.sh --path     print the path only if already fetched (exit 1 if not)
#
# The directory is $KINGX_TOOLS_DIR (default /var/cache/kingx-tests, or ~/.cache/kingx-tests
# when that is not writable). A promtool already on PATH is used as is.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  command -v promtool
  exit 0
fi

dir=${KINGX_TOOLS_DIR:-/var/cache/kingx-tests}
if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
  dir="${HOME:-/tmp}/.cache/kingx-tests"
  mkdir -p "$dir"
fi
unpacked="$dir/prometheus"
bin="$unpacked/usr/bin/promtool"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
[ "${1:-}" = "--path" ] && exit 1

exec 9>"$dir/.promtool.lock"
flock -w 600 9
if [ ! -x "$bin" ]; then
  work=$(mktemp -d "$dir/download.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # apt-get download needs the package index; refresh it once if the package is unknown.
  if ! (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1); then
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    (cd "$work" && apt-get download -qq prometheus >/dev/null)
  fi
  deb=$(ls "$work"/prometheus_*.deb)
  rm -rf "$unpacked.tmp"
  dpkg-deb -x "$deb" "$unpacked.tmp"
  rm -rf "$unpacked"
  mv "$unpacked.tmp" "$unpacked"
fi
"$bin" --version >/dev/null 2>&1 || { echo "promtool.sh: $bin does not run" >&2; exit 1; }
echo "$bin"
