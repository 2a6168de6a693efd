#!/bin/bash
# audit3 probe 10: kingx-tool's usage errors. README: "An option given twice (a second --data, say) is a usage
# error naming it (exit 64), as it is for kingx"; --help "each option at most once". Each option (and each
# command's own option) given twice, an unknown command, an unknown option, a missing KEY: exit status and the
# first line of stderr. A database of 3 keys made by the tool itself first.
# Usage: bash p10_tool.sh /path/to/kingx-tool
T=${1:?kingx-tool}
D=$(mktemp -d /tmp/audit3-p10-XXXXXX)
for k in a b c; do echo v$k | "$T" --data $D/db put $k >/dev/null; done
run() { out=$("$T" "$@" 2>&1 >/dev/null); echo "exit $? | $* | $(echo "$out" | head -1)"; }
run --data $D/db --data $D/db stat
run --data $D/db --segment-bytes 1M --segment-bytes 1M stat
run --data $D/db --disk-reserve-bytes 0 --disk-reserve-bytes 0 stat
run --data $D/db --compression-level 1 --compression-level 1 stat
run --data $D/db --max-key-bytes 10 --max-key-bytes 10 stat
run --data $D/db --max-value-bytes 10 --max-value-bytes 10 stat
run --data $D/db --key-file /etc/hostname --key-file /etc/hostname get
run --data $D/db list --prefix a --prefix a
run --data $D/db list --limit 1 --limit 2
run --data $D/db list --start-after a --start-after b
run --data $D/db list --encoding url --encoding url
run --data $D/db stat --json --json
run --data $D/db compact --all --all
run --data $D/db frobnicate
run --data $D/db --no-such-option stat
run --data $D/db get
run --data $D/db list --limit 0
run --data $D/db list --limit abc
run --data $D/db list --encoding json
run stat
rm -rf $D
