#!/usr/bin/env bash
# Installs what bench/compare and bench/abuse.py run against and with (the peers nginx, redis,
# webdis and memcached; the load generators wrk and h2load; slowhttptest for the slow-client
# abuse; gnuplot for the plots), and leaves no service
# of what it installed enabled or running: the harness starts its own instances on 127.0.0.1
# with ephemeral ports, never the system services.
#
#   bench/install-peers.sh                      the benchmark peers and tools
#   bench/install-peers.sh --with-profilers     the same, plus valgrind and linux-perf
#   bench/install-peers.sh --with-engines       the same, plus LevelDB and RocksDB's headers and
#                                               libraries (engine_bench's peers; reconfigure the
#                                               build tree afterwards: meson setup --reconfigure)
#   bench/install-peers.sh --packages "a b"     exactly these packages, under the same rules
#
# Rules:
# - Idempotent and quiet: packages already installed are not fetched, and apt's index is refreshed
#   only when something is missing. Run as root on Debian 12 (only needed when something is missing).
# - While dpkg runs, a temporary /usr/sbin/policy-rc.d answers 101 (the Debian way to forbid
#   service starts from maintainer scripts); the previous file, if any, is put back afterwards.
# - Then every systemd unit (service, socket, timer) and SysV script shipped by a package that
#   this run installed (dependencies included: nginx.service lives in nginx-common) is disabled,
#   and stopped if systemd is running. Packages that were installed before are left alone: a
#   user's own nginx or redis keeps its state.
# - apt-get waits up to 600 s for the dpkg lock (parallel installs wait instead of failing), and
#   runs of this script are serialised by a lock file, since they swap policy-rc.d.
# Exit status: 0 when everything is installed and no service of what it installed is enabled or
# active; non-zero (with a message) otherwise.
set -euo pipefail

peers=(nginx-light wrk nghttp2-client redis-server webdis memcached gnuplot-nox slowhttptest)
profilers=(valgrind linux-perf)
engines=(libleveldb-dev librocksdb-dev)

packages=("${peers[@]}")
while [ $# -gt 0 ]; do
  case $1 in
    --with-profilers) packages+=("${profilers[@]}") ;;
    --with-engines) packages+=("${engines[@]}") ;;
    --packages) shift; read -r -a packages <<<"${1:?--packages needs a list}" ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-peers.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

installed_set() {
  dpkg-query -W -f='${Package} ${Status}\n' 2>/dev/null | awk '$NF == "installed" {print $1}' | sort
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-peers.sh: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi

lockfile=/run/lock/kingx-install-peers.lock
[ -d /run/lock ] || lockfile=/tmp/kingx-install-peers.lock
exec 9>"$lockfile"
flock -w 900 9 || { echo "install-peers.sh: another install holds $lockfile" >&2; exit 1; }

policy=/usr/sbin/policy-rc.d
saved=""
restore_policy() {
  if [ -n "$saved" ]; then
    mv -f "$saved" "$policy"
  else
    rm -f "$policy"
  fi
}
if [ -e "$policy" ]; then
  saved=$(mktemp "$policy.kingx-saved.XXXXXX")
  cp -p "$policy" "$saved"
fi
trap restore_policy EXIT
printf '#!/bin/sh\n# Written by kingx bench/install-peers.sh while it installs; removed afterwards.\nexit 101\n' >"$policy"
chmod 755 "$policy"

before=$(mktemp)
installed_set >"$before"
echo "install-peers.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=600 -qq)
apt-get "${apt_opts[@]}" update
apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
restore_policy
trap - EXIT

new_pkgs=$(comm -13 "$before" <(installed_set))
rm -f "$before"

systemd_running=0
[ -d /run/systemd/system ] && systemd_running=1
status=0
for pkg in $new_pkgs; do
  files=$(dpkg -L "$pkg" 2>/dev/null || true)
  units=$(grep -E '^/(usr/)?lib/systemd/system/[^/]+\.(service|socket|timer)$' <<<"$files" \
            | xargs -r -n1 basename | grep -v '@\.' || true)
  scripts=$(grep -E '^/etc/init\.d/[^/]+$' <<<"$files" | xargs -r -n1 basename || true)
  for unit in $units; do
    if command -v systemctl >/dev/null; then
      [ $systemd_running = 1 ] && systemctl stop "$unit" 2>/dev/null || true
      systemctl disable --quiet "$unit" 2>/dev/null || true
      state=$(systemctl is-enabled "$unit" 2>/dev/null || true)
      if [ "$state" = enabled ]; then
        echo "install-peers.sh: $unit ($pkg) is still enabled" >&2; status=1
      fi
      if [ $systemd_running = 1 ] && systemctl is-active --quiet "$unit"; then
        echo "install-peers.sh: $unit ($pkg) is still running" >&2; status=1
      fi
    fi
  done
  for script in $scripts; do
    if command -v update-rc.d >/dev/null; then
      update-rc.d "$script" disable >/dev/null 2>&1 || true
    fi
  done
  [ -n "$units$scripts" ] && echo "install-peers.sh: $pkg: disabled ${units//$'\n'/ } ${scripts//$'\n'/ }" >&2
done
exit $status
