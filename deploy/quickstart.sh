#!/usr/bin/env bash
# README command 1: install what is needed, build an optimised kingx, and run it
# in the foreground with its embedded defaults (127.0.0.1:8080, data in ./data).
# Extra arguments are passed to kingx (e.g. --workers 2). Stop it with Ctrl-C
# (fast stop) or `kill -QUIT <pid>` (graceful).
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/setup-debian.sh
if [ -f build-release/build.ninja ]; then
  meson setup --reconfigure build-release -Dbuildtype=release -Dtests=false -Dkill_points=false >/dev/null
else
  meson setup build-release -Dbuildtype=release -Dtests=false -Dkill_points=false >/dev/null
fi
ninja -C build-release src/kingx engine/tool/kingx-tool >/dev/null
echo "kingx: listening on 127.0.0.1:8080, data in ./data (curl -X PUT --data-binary @file http://127.0.0.1:8080/v1/kv/mykey)" >&2
exec ./build-release/src/kingx "$@"
