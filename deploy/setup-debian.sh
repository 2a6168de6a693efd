#!/usr/bin/env bash
# Installs every Debian package that building, testing and benchmarking kingx needs.
# Idempotent and quiet: packages already present are not fetched again, and apt's
# index is refreshed only when something is missing. Run as root on Debian 12.
set -euo pipefail

packages=(
  # build
  build-essential meson ninja-build pkg-config
  libuv1-dev nlohmann-json3-dev libzstd-dev libxxhash-dev catch2 node-llhttp
  # fuzzing and sanitizer runtimes
  clang libclang-rt-14-dev
  # black-box tests and operations
  curl procps iproute2 util-linux
  # benchmarks and the peers they compare against
  nginx-light wrk redis-server webdis memcached gnuplot-nox slowhttptest
  libleveldb-dev librocksdb-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-debian.sh: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi

echo "setup-debian.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Debian images often forbid service starts (policy-rc.d returns 101); the peers
# are started by the benchmark harness itself, never as system services.
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
