#!/usr/bin/env python3
"""Paired (same round) differences and ratios of split.py runs, worker thread only.
    python3 pairs.py runs.jsonl A-B [A-B ...]     e.g. k1M-nginx k10k-nginx"""
import json, os, statistics, sys
TCK = os.sysconf("SC_CLK_TCK")
by = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if not r.get("requests"):
        continue
    w = [0, 0, 0]
    for k, d in r["tasks"].items():
        if k.endswith(":kingx-worker") or k.endswith(":nginx"):
            w[0] += d["utime"]; w[1] += d["stime"]; w[2] += d["run_ns"]
    n = r["requests"]
    by[(r["round"], r["conns"], r["server"])] = (1e6 * w[0] / TCK / n, 1e6 * w[1] / TCK / n, w[2] / n / 1000)
rounds = sorted({k[0] for k in by})
for c in sorted({k[1] for k in by}):
    for pair in sys.argv[2:]:
        a, b = pair.split("-")
        rs = [r for r in rounds if (r, c, a) in by and (r, c, b) in by]
        d = [[by[(r, c, a)][i] - by[(r, c, b)][i] for r in rs] for i in range(3)]
        ratio = [by[(r, c, a)][2] / by[(r, c, b)][2] for r in rs]
        print(f"c={c} {a} vs {b}: median difference per GET user {statistics.median(d[0]):+.2f} us, "
              f"kernel {statistics.median(d[1]):+.2f} us, run {statistics.median(d[2]):+.2f} us; "
              f"run ratio median {statistics.median(ratio):.3f} rounds {[round(x, 2) for x in ratio]}")
