#!/usr/bin/env bash
# Installs the Debian 12 packages kingx needs, and nothing else:
#
#   deploy/setup-debian.sh           building and running kingx (what deploy/quickstart.sh uses):
#                                    the compiler, meson/ninja, and the libraries of the README
#   deploy/setup-debian.sh --tests   the same, plus what the test suite needs (tests/run-all.sh):
#                                    Catch2, curl and wrk, help2man and dpkg-dev (the package
#                                    test), systemd-analyze, logrotate (the shipped rotation
#                                    file's test), and the real nginx and HAProxy that
#                                    tests/deploy/ runs kingx behind
#
# The benchmark peers (redis, webdis, memcached, h2load ...) come from bench/install-peers.sh;
# fuzzing (tests/fuzz/) needs clang and libclang-rt-14-dev, which nothing here installs.
# No install leaves a service enabled or running: the packages here ship none, except nginx and
# haproxy, which go through bench/install-peers.sh (a policy-rc.d forbids starts while dpkg runs,
# then every service of what it installed is disabled and stopped; a peer that was already
# installed is left as it was). The tests start their own nginx and haproxy on 127.0.0.1.
#
# Idempotent and quiet: packages already present are not fetched again, and apt's index is
# refreshed only when something is missing. apt-get waits up to 600 s for the dpkg lock, so
# parallel runs wait instead of failing. Run as root on Debian 12 (only needed when something
# is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

build=(build-essential meson ninja-build pkg-config
       libuv1-dev nlohmann-json3-dev libzstd-dev libxxhash-dev node-llhttp)
tests=(catch2 curl wrk procps iproute2 util-linux
       help2man dpkg-dev systemd logrotate)
test_peers="nginx haproxy"

with_tests=0
case "${1:-}" in
  "") ;;
  --tests) with_tests=1 ;;
  -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "setup-debian.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac

packages=("${build[@]}")
[ $with_tests = 1 ] && packages+=("${tests[@]}")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-debian.sh: missing packages (${missing[*]}); run as root" >&2
    exit 1
  fi
  echo "setup-debian.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-o DPkg::Lock::Timeout=600 -qq)
  apt-get "${apt_opts[@]}" update
  apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ $with_tests = 1 ]; then
  bash bench/install-peers.sh --packages "$test_peers"
fi
