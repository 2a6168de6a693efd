#!/bin/bash
# The TCP segments and ACKs a benchmark's traffic costs, counted by the kernel and by nobody else:
# runs COMMAND in a private network namespace (its own loopback, brought up here, and its own SNMP
# counters, which start at zero), then writes the namespace's counters (`nstat -az`) to COUNTS and
# prints those that say what a request costs on the wire: segments sent (TcpOutSegs, both ends: a
# request and its answer with every ACK piggybacked is 2), segments that carried data
# (TcpExtTCPOrigDataSent), pure ACKs received (TcpExtTCPPureAcks) and delayed-ACK timers that fired
# and sent one (TcpExtDelayedACKs). With REQUESTS=N (or REQUESTS_FROM=FILE...: the sum of the
# "requests" fields of the WRKJSON lines bench/lua scripts print) it divides them by the requests.
# Every other process on the machine is outside the namespace, so a busy machine does not move the
# counts (it moves the timing that decides whether a delayed ACK fires: a request that waits longer
# than the delayed-ACK timeout, 40 ms at least, for its answer has its ACK sent alone).
# Needs root (unshare -n). COMMAND must talk to 127.0.0.1 only and stop what it starts.
# usage: [REQUESTS=N | REQUESTS_FROM='FILE...'] bench/netns_tcp.sh COUNTS COMMAND [ARGS...]
set -u
[ $# -ge 2 ] || { echo "usage: [REQUESTS=N] bench/netns_tcp.sh COUNTS COMMAND [ARGS...]" >&2; exit 2; }
export NETNS_COUNTS=$1; shift
# shellcheck disable=SC2016  # expanded by the inner shell, inside the namespace
unshare -n -- bash -c 'ip link set lo up || exit 1; "$@"; rc=$?; nstat -az > "$NETNS_COUNTS"; exit $rc' netns_tcp "$@"
rc=$?
# shellcheck disable=SC2086  # REQUESTS_FROM is a list of files
python3 - "$NETNS_COUNTS" "${REQUESTS:-}" ${REQUESTS_FROM:-} <<'PY'
import json, sys
counts, requests, sources = sys.argv[1], sys.argv[2], sys.argv[3:]
n = int(requests) if requests else 0
for src in sources:
    for line in open(src):
        if line.startswith("WRKJSON "):
            n += json.loads(line[8:])["requests"]
ev = {}
for line in open(counts):
    p = line.split()
    if len(p) >= 2 and p[1].isdigit():
        ev[p[0]] = int(p[1])
names = ["TcpOutSegs", "TcpExtTCPOrigDataSent", "TcpExtTCPPureAcks", "TcpExtDelayedACKs"]
print(" ".join(f"{k}={ev.get(k, 0)}" + (f" ({ev.get(k, 0) / n:.3f}/req)" if n else "") for k in names)
      + (f" requests={n}" if n else ""))
PY
exit $rc
