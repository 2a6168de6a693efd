#!/usr/bin/env python3
"""Per-request µs by symbol of two perf reports (perfpair.py's *.report.txt), each share
times that run's schedstat µs per request (runs.jsonl); the largest differences first.
usage: symdiff.py RUNS.jsonl TAG_A TAG_B [N]    (TAG = r0-c100-ref etc.)"""
import json, sys, re, os
runs = [json.loads(l) for l in open(sys.argv[1])]
def us(tag):
    r, c, name = tag.split("-", 2)
    rec = next(x for x in runs if x["round"] == int(r[1:]) and x["conns"] == int(c[1:]) and x["server"] == name)
    out = {}
    for line in open(os.path.join(os.path.dirname(sys.argv[1]), tag + ".report.txt")):
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
        if m:
            out[m.group(2) + " " + m.group(3).strip()] = float(m.group(1)) / 100 * rec["sched_us"]
    return out, rec["sched_us"]
a, ta = us(sys.argv[2]); b, tb = us(sys.argv[3])
n = int(sys.argv[4]) if len(sys.argv) > 4 else 30
print(f"{sys.argv[2]} {ta:.2f} us/req, {sys.argv[3]} {tb:.2f} us/req (under perf record)")
keys = set(a) | set(b)
for k in sorted(keys, key=lambda k: -abs(a.get(k, 0) - b.get(k, 0)))[:n]:
    print(f"{a.get(k,0):7.3f} {b.get(k,0):7.3f} {a.get(k,0)-b.get(k,0):+7.3f}  {k[:90]}")
