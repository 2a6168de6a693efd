#!/usr/bin/env python3
"""Paired (same round) ratios of one server to others, from bench/compare summary.json files.
usage: paired.py SERVER REF[,REF...] summary.json...   (rounds of several files are pooled)"""
import json, statistics, sys
srv, refs, files = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
rows = {}
for i, f in enumerate(files):
    for r in json.load(open(f))["runs"]:
        if r.get("ok"):
            rows[(i, r["round"], r["scenario"], r["conns"], r["server"])] = r
for ref in refs:
    cells = sorted({(k[2], k[3]) for k in rows})
    for scen, conns in cells:
        rps, cpu, pairs = [], [], []
        for (i, rnd, s, c, name), r in rows.items():
            if (s, c, name) != (scen, conns, srv):
                continue
            o = rows.get((i, rnd, s, c, ref))
            if o is None:
                continue
            rps.append(r["rps"] / o["rps"])
            cpu.append(r["req_per_cpu_s"] / o["req_per_cpu_s"])
            pairs.append(f"{r['cpu_us_per_req']}/{o['cpu_us_per_req']}us")
        if rps:
            print(f"{srv} / {ref} {scen} c={conns}: req/s median {statistics.median(rps):.3f} "
                  f"[{min(rps):.3f}-{max(rps):.3f}], req per CPU-s median {statistics.median(cpu):.3f} "
                  f"[{min(cpu):.3f}-{max(cpu):.3f}] (n={len(rps)}; CPU/req {' '.join(pairs)})")
