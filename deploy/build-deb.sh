#!/usr/bin/env bash
# Builds the Debian package of kingx from this tree, in one command:
#
#   deploy/build-deb.sh [OUTDIR]          (default OUTDIR: build-deb)
#
# and prints the path of OUTDIR/kingx_<version>-1_<arch>.deb. Needs what
# `deploy/setup-debian.sh --tests` installs (the build tools, help2man, dpkg-dev); not root.
#
# The package holds:
#   /usr/bin/kingx, /usr/bin/kingx-tool          release build (-Dkill_points=false), stripped
#   /lib/systemd/system/kingx.service            deploy/kingx.service, as it is
#   /etc/kingx/kingx.json                        the packaged configuration (a conffile): every
#                                                setting of deploy/kingx.example.json, data in
#                                                /var/lib/kingx/data, errors to the journal, the
#                                                pid file /run/kingx/kingx.pid (RuntimeDirectory)
#   /etc/logrotate.d/kingx                       deploy/kingx.logrotate, as it is (a conffile):
#                                                /var/log/kingx/*.log, USR1 through the pid file
#   /usr/share/man/man1/kingx.1.gz, kingx-tool.1.gz   generated from --help by help2man
#   /usr/share/doc/kingx/                        README, copyright, changelog, and examples/
#                                                (the nginx and HAProxy configurations,
#                                                kingx.example.json, kingx-reshard)
# Maintainer scripts do what Debian's dh_installsystemd would: postinst creates the `kingx`
# system user, enables kingx.service and starts it (through deb-systemd-invoke, so a
# policy-rc.d that forbids starts is obeyed); an upgrade restarts it; removal stops and masks
# it, purge forgets it. Purge keeps /var/lib/kingx: a database is never deleted by apt.
# Dependencies come from dpkg-shlibdeps (the libraries the binaries link) plus adduser.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
out=$(realpath -m "${1:-build-deb}")

for tool in meson ninja help2man dpkg-deb dpkg-shlibdeps python3; do
  command -v "$tool" >/dev/null || { echo "build-deb.sh: $tool is missing (deploy/setup-debian.sh --tests installs it)" >&2; exit 1; }
done

version=$(meson introspect --projectinfo meson.build | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
debversion="$version-1"
arch=$(dpkg --print-architecture)
build="$out/build"
root="$out/root"

# --- binaries -------------------------------------------------------------------------------
if [ -f "$build/build.ninja" ]; then
  meson setup --reconfigure "$build" -Dbuildtype=release -Dtests=false -Dkill_points=false --prefix=/usr >/dev/null
else
  meson setup "$build" -Dbuildtype=release -Dtests=false -Dkill_points=false --prefix=/usr >/dev/null
fi
ninja -C "$build" src/kingx engine/tool/kingx-tool >/dev/null
got=$("$build/src/kingx" --version)
[ "$got" = "kingx $version" ] || { echo "build-deb.sh: kingx --version says '$got', meson.build says $version" >&2; exit 1; }

rm -rf "$root"
install -d -m 755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/kingx" "$root/etc/logrotate.d" \
  "$root/usr/share/man/man1" "$root/usr/share/doc/kingx/examples"
install -m 755 -s "$build/src/kingx" "$root/usr/bin/kingx"
install -m 755 -s "$build/engine/tool/kingx-tool" "$root/usr/bin/kingx-tool"

# --- unit, configuration, documentation -------------------------------------------------------
install -m 644 deploy/kingx.service "$root/lib/systemd/system/kingx.service"
install -m 644 deploy/kingx.logrotate "$root/etc/logrotate.d/kingx"
python3 - deploy/kingx.example.json "$root/etc/kingx/kingx.json" <<'PY'
import json, sys
conf = json.load(open(sys.argv[1]))
conf.update({"data": "/var/lib/kingx/data", "error_log": "stderr", "access_log": "off",
             "pid": "/run/kingx/kingx.pid"})
with open(sys.argv[2], "w") as f:
    json.dump(conf, f, indent=2)
    f.write("\n")
PY
chmod 644 "$root/etc/kingx/kingx.json"

help2man --no-info --name "HTTP key-value service built like nginx" "$build/src/kingx" >"$out/kingx.1"
help2man --no-info --no-discard-stderr --version-string="$version" \
  --name "offline tool for a stopped kingx data directory" "$build/engine/tool/kingx-tool" >"$out/kingx-tool.1"
for page in kingx kingx-tool; do
  gzip -9n <"$out/$page.1" >"$root/usr/share/man/man1/$page.1.gz"
done

doc="$root/usr/share/doc/kingx"
install -m 644 README.md "$doc/README.md"
install -m 644 deploy/nginx-reverse-proxy.conf deploy/nginx-sharding.conf deploy/nginx-resharding.conf \
  deploy/haproxy-sharding.cfg deploy/haproxy-resharding.cfg \
  deploy/kingx.example.json "$doc/examples/"
install -m 755 deploy/kingx-reshard "$doc/examples/kingx-reshard"
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: kingx
Source: this repository (deploy/build-deb.sh)

Files: *
Copyright: the kingx developers
License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy of this software
 and associated documentation files (the "Software"), to deal in the Software without
 restriction, including without limitation the rights to use, copy, modify, merge, publish,
 distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
 Software is furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or
 substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
 BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
 NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
 DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
EOF
when=$(git -C "$top" log -1 --format=%aD 2>/dev/null || date -R)
commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
printf 'kingx (%s) unstable; urgency=medium\n\n  * Built from commit %s by deploy/build-deb.sh.\n\n -- kingx developers <kingx@localhost>  %s\n' \
  "$debversion" "$commit" "$when" | gzip -9n >"$doc/changelog.Debian.gz"
chmod 644 "$doc/changelog.Debian.gz" "$doc/copyright"

# --- maintainer scripts -------------------------------------------------------------------------
cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# kingx postinst: the system user, then the unit as dh_installsystemd would handle it.
set -e
case "$1" in
  configure)
    if ! getent passwd kingx >/dev/null; then
      adduser --system --group --home /var/lib/kingx --no-create-home --quiet kingx
    fi
    ;;
esac
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
  deb-systemd-helper unmask kingx.service >/dev/null || true
  if deb-systemd-helper --quiet was-enabled kingx.service; then
    deb-systemd-helper enable kingx.service >/dev/null || true   # first install, or was enabled
  else
    deb-systemd-helper update-state kingx.service >/dev/null || true
  fi
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    # An upgrade ($2 = old version) restarts: systemd stops the old instance completely (the
    # master exits after its children) before it starts the new one.
    if [ -n "$2" ]; then action=restart; else action=start; fi
    deb-systemd-invoke "$action" kingx.service >/dev/null || true
  fi
fi
exit 0
EOF
cat >"$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
# kingx prerm: stop the service (graceful: SIGQUIT, in-flight requests finish) on removal.
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  deb-systemd-invoke stop kingx.service >/dev/null || true
fi
exit 0
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# kingx postrm: mask on removal, forget on purge. /var/lib/kingx (the database) is kept.
set -e
if [ "$1" = remove ] && [ -x /usr/bin/deb-systemd-helper ]; then
  deb-systemd-helper mask kingx.service >/dev/null || true
fi
if [ "$1" = purge ] && [ -x /usr/bin/deb-systemd-helper ]; then
  deb-systemd-helper purge kingx.service >/dev/null || true
  deb-systemd-helper unmask kingx.service >/dev/null || true
fi
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
exit 0
EOF
chmod 755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
printf '%s\n' /etc/kingx/kingx.json /etc/logrotate.d/kingx >"$root/DEBIAN/conffiles"

# --- control --------------------------------------------------------------------------------
shlib=$(mktemp -d)
mkdir -p "$shlib/debian"
printf 'Source: kingx\n\nPackage: kingx\nArchitecture: any\n' >"$shlib/debian/control"
depends=$(cd "$shlib" && dpkg-shlibdeps -O -e"$root/usr/bin/kingx" -e"$root/usr/bin/kingx-tool" 2>/dev/null \
  | sed -n 's/^shlibs:Depends=//p')
rm -rf "$shlib"
[ -n "$depends" ] || { echo "build-deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: kingx
Version: $debversion
Architecture: $arch
Maintainer: kingx developers <kingx@localhost>
Installed-Size: $size
Depends: $depends, adduser
Section: net
Priority: optional
Homepage: file:///usr/share/doc/kingx/README.md
Description: HTTP key-value service built like nginx
 kingx serves GET/HEAD/PUT/DELETE /v1/kv/{key} over HTTP/1.1 from a master process, one writer
 process and single-threaded libuv workers, on a log-structured storage engine of the
 KingDB/Bitcask lineage (append-only segments, checksums, zstd, hint files, compaction).
 .
 This package runs it as the kingx.service systemd unit with /etc/kingx/kingx.json
 (127.0.0.1:8080, data in /var/lib/kingx/data).
EOF
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

deb="$out/kingx_${debversion}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
