#!/usr/bin/env python3
"""Paired ratios (new ÷ main, per interleaved round) from a durable_put_probe.py probe.json."""
import json
import sys
from statistics import median

j = json.load(open(sys.argv[1]))
by = {}
for r in j["rows"]:
    by.setdefault((r["conns"], r["round"]), {})[r["bin"]] = r
for c in sorted({k[0] for k in by}):
    pairs = [d for (cc, _), d in sorted(by.items()) if cc == c and "main" in d and "new" in d]
    def col(f):
        return [f(d["new"]) / f(d["main"]) for d in pairs]
    rps = col(lambda r: r["rps"])
    cpu = col(lambda r: r["cpu_us_per_req_kingx-worker"] + r["cpu_us_per_req_kingx-writer"])
    sw = col(lambda r: r["switches_per_req_kingx-writer"] * r["ops_per_batch"])
    print(f"c={c}: req/s new/main {median(rps):.2f} (rounds {', '.join(f'{x:.2f}' for x in rps)}); "
          f"server CPU per PUT {median(cpu):.2f}; writer context switches per batch {median(sw):.2f}; "
          f"ops/batch main {median(d['main']['ops_per_batch'] for d in pairs)} "
          f"new {median(d['new']['ops_per_batch'] for d in pairs)}")
