#!/usr/bin/env python3
"""Per-request CPU by symbol (self time) of two perf.data files of why_kernel.py --perf-dir, side by side.
usage: perf_diff.py RUN.json DIR CELL_A CELL_B [N]   (cells as LABEL-cCONNS, e.g. nginx-c100 always-c100;
       LABEL-cCONNS.wrk for wrk's profile in that cell)
Samples are converted to microseconds with the sampling period (perf record -F 1999: ~500 us of CPU each)
and divided by the requests of that cell's last round."""
import collections
import json
import subprocess
import sys


def per_req(run, d, cell):
    base, _, suffix = cell.partition(".")  # LABEL-cCONNS[.wrk]: the .wrk file is wrk's own profile
    label, conns = base.rsplit("-c", 1)
    rows = [r for r in json.load(open(run))["rows"] if r["server"] == label and r["conns"] == int(conns)]
    n = max(rows, key=lambda r: r["round"])["requests"]
    out = subprocess.run(["perf", "report", "-i", f"{d}/{cell}.perf.data", "--no-children", "--sort", "sym",
                          "--stdio", "-q", "-g", "none", "-F", "period,sym"], capture_output=True, text=True).stdout
    by = collections.Counter()
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].isdigit():
            by[parts[1].strip()] += int(parts[0]) / 1e3 / n  # period is in ns of cpu-clock
    return by, n


def main():
    run, d, a, b = sys.argv[1:5]
    top = int(sys.argv[5]) if len(sys.argv) > 5 else 30
    A, na = per_req(run, d, a)
    B, nb = per_req(run, d, b)
    print(f"us per request, self: {a} ({na} requests) | {b} ({nb} requests) | difference")
    print(f"  total: {sum(A.values()):.2f} | {sum(B.values()):.2f} | {sum(B.values()) - sum(A.values()):+.2f}")
    keys = sorted(set(A) | set(B), key=lambda k: -abs(B[k] - A[k]))
    for k in keys[:top]:
        print(f"  {k[:60]:60s} {A[k]:6.3f} | {B[k]:6.3f} | {B[k] - A[k]:+.3f}")


if __name__ == "__main__":
    main()
