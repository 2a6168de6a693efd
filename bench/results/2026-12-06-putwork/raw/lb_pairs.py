#!/usr/bin/env python3
"""Paired ratios new/old of lookup_bench's thread CPU per op, per round (repetitions 1.. of each run:
the first repetition of a run warms the caches and the segment cache), by mode (forecast or not).

    python3 lb_pairs.py lookup_bench.jsonl"""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
for forecast in (0, 1):
    ratios = []
    for rnd in sorted({r["round"] for r in rows if r["forecast"] == forecast}):
        by = {b: [r["cpu_ns_per_op"] for r in rows if r["forecast"] == forecast and r["round"] == rnd
                  and r["bin"] == b and r["rep"] > 0] for b in ("old", "new")}
        if not by["old"] or not by["new"]:
            continue
        o, n = statistics.mean(by["old"]), statistics.mean(by["new"])
        ratios.append(n / o)
        print(f"forecast={forecast} round {rnd}: old {o:.0f} ns/op, new {n:.0f} ns/op, new/old {n / o:.2f}")
    if ratios:
        print(f"forecast={forecast}: median new/old {statistics.median(ratios):.2f} over {len(ratios)} rounds "
              f"({min(ratios):.2f}-{max(ratios):.2f})")
