#!/usr/bin/env python3
"""Per round, server scheduler time per request (schedstat: exact, not tick-sampled) of one server
over others, from a bench/compare summary.json: usage: sched_pairs.py SUMMARY BASE OTHER[,OTHER...]"""
import json
import statistics
import sys

runs = json.load(open(sys.argv[1]))["runs"]
base, others = sys.argv[2], sys.argv[3].split(",")
cell = {}
for r in runs:
    if r.get("ok") and r.get("sched_us_per_req"):
        cell[(r["server"], r["scenario"], r["conns"], r["round"])] = r
for o in others:
    for scen in sorted({k[1] for k in cell}):
        for c in sorted({k[2] for k in cell}):
            ratios, pairs = [], []
            for rnd in sorted({k[3] for k in cell}):
                a, b = cell.get((base, scen, c, rnd)), cell.get((o, scen, c, rnd))
                if a and b:
                    ratios.append(b["sched_us_per_req"] / a["sched_us_per_req"])
                    pairs.append(f"{a['sched_us_per_req']:.2f}/{b['sched_us_per_req']:.2f}")
            if ratios:
                print(f"{base} / {o} {scen} c={c}: req per sched-s median {statistics.median(ratios):.3f} "
                      f"[{min(ratios):.3f}-{max(ratios):.3f}] (n={len(ratios)}; sched us/req {' '.join(pairs)})")
