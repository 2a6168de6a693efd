#!/bin/sh
# dm_flakey_faults.sh: the black-box fault cases with their data on a
# device-mapper "flakey" device, for the fault classes the file seam cannot
# make (RELIABILITY.md "Not promised", device faults): a device that fails
# under the page cache, writes dropped after a failed fsync.
#
#   bench/dm_flakey_faults.sh [--mode clean|error|drop_writes|error_writes] [--up S] [--down S]
#                             [--size-mb N] [--bin build/src/kingx] [--tool build/engine/tool/kingx-tool]
#                             [--out DIR] [TEST.py ...]
#
# A loop device over a sparse file in a scratch directory, a dm-flakey target
# over it ("0 SECTORS flakey LOOP 0 UP DOWN [1 FEATURE]"), ext4 on top, mounted
# in the scratch directory; each test runs with TMPDIR there (the tests put
# their data directories under TMPDIR), one after the other. Modes:
#   clean         the device never fails (down 0): the cases pass as on any disk,
#                 which shows the stack works before faults are read into it;
#   error         dm-flakey's default: every I/O fails (EIO) during the down
#                 seconds of every up+down cycle;
#   drop_writes   writes are acknowledged and dropped while down (reads succeed):
#                 what fsyncgate's lost dirty pages look like from above;
#   error_writes  writes fail while down, reads succeed.
# Under error / drop_writes / error_writes the cases' own checks may fail (they
# expect the faults they inject, not the device's): the output is each case's
# status and log, to be read, plus kingx-tool verify of each data directory
# left (KINGX_KEEP=1) once the device is healthy again.
#
# Needs root, device-mapper in the kernel (/proc/misc lists device-mapper, or
# /dev/mapper/control exists), dmsetup, losetup, mkfs.ext4. Without them it
# prints why and exits 77 (skipped) without touching anything. Everything it
# makes is removed on exit (umount, dmsetup remove, losetup -d, the scratch
# directory unless --out keeps the logs).
set -eu

mode=clean
up=5
down=1
size_mb=1024
bin=build/src/kingx
tool=build/engine/tool/kingx-tool
out=
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) mode=$2; shift 2 ;;
    --up) up=$2; shift 2 ;;
    --down) down=$2; shift 2 ;;
    --size-mb) size_mb=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --tool) tool=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -eq 0 ]; then
  set -- test_open_fault.py test_read_fault.py test_page_fault.py test_failed_sync.py test_corruption.py
fi

skip() {
  echo "dm_flakey_faults: skipped: $*" >&2
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (losetup, dmsetup, mount)"
if ! grep -qw device-mapper /proc/misc 2>/dev/null && [ ! -e /dev/mapper/control ]; then
  skip "this kernel has no device-mapper (/proc/misc does not list it; no /dev/mapper/control): a container or a kernel without dm-mod"
fi
for t in dmsetup losetup blockdev mkfs.ext4 mount umount; do
  command -v "$t" >/dev/null 2>&1 || skip "$t is not installed"
done
[ -x "$bin" ] || { echo "dm_flakey_faults: no kingx binary at $bin" >&2; exit 2; }
case "$mode" in
  clean) table_down=0; feature= ;;
  error) table_down=$down; feature= ;;
  drop_writes|error_writes) table_down=$down; feature=$mode ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
[ -x "$tool" ] && tool=$(cd "$(dirname "$tool")" && pwd)/$(basename "$tool")
work=$(mktemp -d /var/tmp/kingx-dm-flakey-XXXXXX)
name=kingx-flakey-$$
loop=
mounted=
cleanup() {
  set +e
  [ -n "$mounted" ] && umount "$work/mnt"
  dmsetup info "$name" >/dev/null 2>&1 && dmsetup remove "$name"
  [ -n "$loop" ] && losetup -d "$loop"
  if [ -n "$out" ]; then
    mkdir -p "$out" && cp "$work"/*.log "$out"/ 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

truncate -s "${size_mb}M" "$work/backing.img"
loop=$(losetup -f --show "$work/backing.img")
sectors=$(blockdev --getsz "$loop")
if [ -n "$feature" ]; then
  table="0 $sectors flakey $loop 0 $up $table_down 1 $feature"
else
  table="0 $sectors flakey $loop 0 $up $table_down"
fi
# Up for good while the file system is made and mounted.
dmsetup create "$name" --table "0 $sectors flakey $loop 0 1 0"
mkfs.ext4 -q "/dev/mapper/$name"
mkdir -p "$work/mnt"
mount "/dev/mapper/$name" "$work/mnt"
mounted=1
mkdir -p "$work/mnt/tmp"
dmsetup suspend "$name" && dmsetup load "$name" --table "$table" && dmsetup resume "$name"
echo "dm_flakey_faults: mode $mode, table: $table" | tee "$work/summary.log"
uptime | tee -a "$work/summary.log"

failed=0
for t in "$@"; do
  log="$work/$(basename "$t" .py).log"
  start=$(date +%s)
  if (cd "$here/tests/blackbox" && TMPDIR="$work/mnt/tmp" KINGX_KEEP=1 KINGX_BIN="$bin" KINGX_TOOL_BIN="$tool" \
        python3 "$t") >"$log" 2>&1; then
    status=ok
  else
    status=FAIL
    failed=$((failed + 1))
  fi
  echo "$status $t ($(( $(date +%s) - start )) s)" | tee -a "$work/summary.log"
done

# The device healthy again: what each left on disk must still verify.
dmsetup suspend "$name" && dmsetup load "$name" --table "0 $sectors flakey $loop 0 1 0" && dmsetup resume "$name"
if [ -x "$tool" ]; then
  find "$work/mnt/tmp" -name MANIFEST -path '*/data/MANIFEST' | while read -r m; do
    d=$(dirname "$m")
    if "$tool" verify "$d" >>"$work/verify.log" 2>&1; then v=ok; else v="exit $?"; fi
    echo "verify $d: $v" | tee -a "$work/summary.log"
  done
fi
echo "dm_flakey_faults: $failed of $# cases failed (mode $mode)" | tee -a "$work/summary.log"
[ "$failed" -eq 0 ]
