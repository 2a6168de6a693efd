#!/usr/bin/env python3
"""Per-function self instructions per request, two callgrind_annotate outputs (bench/profile.py *.self.txt).
usage: fn_delta.py A.self.txt REQUESTS_A B.self.txt REQUESTS_B [min_abs_delta]"""
import re, sys

def load(path, requests):
    out = {}
    for line in open(path, errors="replace"):
        m = re.match(r"\s*([\d,]+)\s+\(.*?\)\s.*?\s(\S+:.*)$", line.rstrip())
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = re.sub(r"\s\[/[^]]*\]$", "", m.group(2).strip())
        out[name] = out.get(name, 0) + int(m.group(1).replace(",", "")) / requests
    return out

a = load(sys.argv[1], float(sys.argv[2]))
b = load(sys.argv[3], float(sys.argv[4]))
floor = float(sys.argv[5]) if len(sys.argv) > 5 else 5
rows = sorted(((b.get(k, 0) - a.get(k, 0), k) for k in set(a) | set(b)), key=lambda r: r[0])
for d, k in rows:
    if abs(d) >= floor:
        print(f"{a.get(k, 0):9.1f} {b.get(k, 0):9.1f} {d:+8.1f}  {k[:150]}")
print(f"{sum(a.values()):9.1f} {sum(b.values()):9.1f} {sum(b.values()) - sum(a.values()):+8.1f}  total of the listed functions (above the annotate threshold)")
