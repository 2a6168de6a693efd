#!/usr/bin/env python3
"""Two servers' profiles side by side in microseconds per request: each symbol's share of a
`perf record` (durable_put_probe.py --perf-serve's perf-serve-LABEL-cN.data) times that process's
task-clock per request (the probe's taskclock_us_* of the same run), kernel ([k]) and user ([.]) apart,
the symbols sorted by how much they differ. A sampled profile of a few seconds: differences under a
few hundredths of a microsecond are noise.

Usage: bench/perf_symbols_pair.py A.data A_US_PER_REQUEST B.data B_US_PER_REQUEST [TOP]
Needs perf; Python standard library only.
"""
import re
import subprocess
import sys


def shares(path):
    """{(k or ., symbol): percent of the samples} of one perf.data, self time."""
    out = subprocess.run(["perf", "report", "-i", path, "--no-children", "--sort", "dso,sym", "--stdio", "-g", "none"],
                         capture_output=True, text=True, check=True).stdout
    d = {}
    for line in out.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
        if m:
            d[(m.group(3), m.group(4).strip())] = float(m.group(1))
    return d


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    a, ua, b, ub = shares(argv[0]), float(argv[1]), shares(argv[2]), float(argv[3])
    top = int(argv[4]) if len(argv) > 4 else 40
    ka = sum(v for k, v in a.items() if k[0] == "k") * ua / 100
    kb = sum(v for k, v in b.items() if k[0] == "k") * ub / 100
    print(f"kernel us/req: {ka:.2f} vs {kb:.2f}; user {ua - ka:.2f} vs {ub - kb:.2f}")
    for k in sorted(set(a) | set(b), key=lambda k: -abs(a.get(k, 0) * ua - b.get(k, 0) * ub))[:top]:
        x, y = a.get(k, 0) * ua / 100, b.get(k, 0) * ub / 100
        print(f"{x:7.3f} {y:7.3f} {x - y:+7.3f}  [{k[0]}] {k[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
