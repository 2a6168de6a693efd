#!/usr/bin/env python3
"""Ratios of CPU per GET within each round of conc.py's runs.jsonl: A ÷ B per round, median and range.
usage: pairs.py runs.jsonl A-B [A-B ...]"""
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
for pair in sys.argv[2:]:
    a, b = pair.split("-", 1)
    for c in sorted({r["conns"] for r in runs}):
        xs = [r["servers"][a]["us_per_req"] / r["servers"][b]["us_per_req"] for r in runs if r["conns"] == c]
        if xs:
            print(f"{a} / {b} c={c} n={len(xs)}: CPU per GET ratio median {statistics.median(xs):.3f} "
                  f"[{min(xs):.3f}-{max(xs):.3f}] rounds {' '.join(f'{x:.3f}' for x in xs)}")
