#!/bin/bash
# audit3 probe 11: --trusted-proxy ADDR[/BITS] values through kingx -t (exit status and first line).
# Usage: bash p11_trusted_proxy.sh /path/to/kingx
B=${1:?kingx}; D=$(mktemp -d /tmp/audit3-tp-XXXXXX)
for v in 127.0.0.1/33 ::1/129 10.0.0.0/8 10.0.0.1/8 ::1/128 fe80::1%eth0 127.0.0.1/-1 127.0.0.1/ 1.2.3 0.0.0.0/0 '[::1]' ::ffff:1.2.3.4/96; do
  out=$("$B" -t --data $D/d --trusted-proxy "$v" 2>&1); rc=$?; echo "$v -> exit $rc: $(echo "$out" | head -1)"
done
rm -rf $D
