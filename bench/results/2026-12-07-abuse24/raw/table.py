#!/usr/bin/env python3
"""One table over the six-case run: per case and server, the median over pairs of wrk's req/s ratio
(abused ÷ alone) and the CPU ratio (alone ÷ abused µs per request), the largest worker RSS in an
abused phase (MiB; recorded from slow-body on), and the alone phases' CPU µs per request.
Usage: raw/table.py SIX_DIR"""
import json
import os
import statistics
import sys

d = sys.argv[1]
cases = ["slowloris", "slow-body", "slow-read", "idle-10k", "garbage-64", "garbage-256", "garbage-1024",
         "fd-exhaustion"]
servers = ["new", "ref", "new-threads", "ref-threads", "nginx"]
print("| case | server | req/s ratio (pairs) | CPU ratio | worker RSS abused max MiB | alone µs/req | load |")
print("|---|---|---|---|---|---|---|")
for c in cases:
    p = os.path.join(d, c, "phases.json")
    if not os.path.exists(p):
        print(f"| {c} | (not run) | | | | | |")
        continue
    rows = json.load(open(p))["rows"]
    for s in servers:
        rs = [r for r in rows if r["server"] == s]
        pairs = list(zip(rs[0::2], rs[1::2]))
        rq = [b["rps"] / a["rps"] for a, b in pairs if a["rps"]]
        cpu = [a["cpu_us_per_req"] / b["cpu_us_per_req"] for a, b in pairs
               if a["cpu_us_per_req"] and b["cpu_us_per_req"]]
        rss = [b.get("max_worker_rss_kib") for a, b in pairs if b.get("max_worker_rss_kib")]
        alone = [a["cpu_us_per_req"] for a, b in pairs if a["cpu_us_per_req"]]
        loads = [r["load"] for r in rs] + [r["load_after"] for r in rs]
        med = lambda xs: f"{statistics.median(xs):.3f}" if xs else "–"
        print(f"| {c} | {s} | {med(rq)} ({', '.join(f'{x:.2f}' for x in rq)}) | {med(cpu)} | "
              f"{max(rss) / 1024:.1f} | {', '.join(str(x) for x in alone)} | "
              f"{min(loads):.0f}–{max(loads):.0f} |" if rss else
              f"| {c} | {s} | {med(rq)} ({', '.join(f'{x:.2f}' for x in rq)}) | {med(cpu)} | – | "
              f"{', '.join(str(x) for x in alone)} | {min(loads):.0f}–{max(loads):.0f} |")
