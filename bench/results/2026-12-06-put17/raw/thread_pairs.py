#!/usr/bin/env python3
"""Paired ratios (LABEL_B ÷ LABEL_A per interleaved round) of a durable_put_probe.py probe.json:
req/s, and CPU µs per PUT of each thread (busy share ÷ req/s), medians with the rounds.
Usage: thread_pairs.py probe.json LABEL_A LABEL_B"""
import json
import sys
from statistics import median

j = json.load(open(sys.argv[1]))
a, b = sys.argv[2], sys.argv[3]
by = {}
for r in j["rows"]:
    by.setdefault((r["conns"], r["round"]), {})[r["bin"]] = r
for c in sorted({k[0] for k in by}):
    pairs = [d for (cc, _), d in sorted(by.items()) if cc == c and a in d and b in d]
    threads = sorted(k[5:] for k in pairs[0][a] if k.startswith("busy_kingx"))
    print(f"c={c} ({len(pairs)} rounds), {b} ÷ {a}:")
    rps = [d[b]["rps"] / d[a]["rps"] for d in pairs]
    print(f"  req/s {median(rps):.2f} [{', '.join(f'{x:.2f}' for x in rps)}]")
    for t in threads:
        per = lambda r: r.get("busy_" + t, 0) / r["rps"] * 1e6
        va = [per(d[a]) for d in pairs]
        vb = [per(d[b]) for d in pairs]
        if median(va) < 0.05:
            continue
        ratio = [y / x for x, y in zip(va, vb) if x > 0]
        print(f"  {t:34} CPU us/PUT {a} {median(va):.2f}, {b} {median(vb):.2f}; ratio {median(ratio):.2f} "
              f"[{', '.join(f'{x:.2f}' for x in ratio)}]")
    tot = lambda r: sum(r.get(f"cpu_us_per_req_{p}", 0) for p in ("kingx-worker", "kingx-writer", "kingx-master"))
    srv = [tot(d[b]) / tot(d[a]) for d in pairs]
    print(f"  server CPU per PUT (all processes) {median(srv):.2f} [{', '.join(f'{x:.2f}' for x in srv)}]")
