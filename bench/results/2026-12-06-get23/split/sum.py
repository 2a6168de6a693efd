"""Pooled user and system CPU per GET over all rounds of get_cpu_split.py's runs.jsonl (ticks summed
before dividing: one round's few ticks do not resolve the split). usage: sum.py runs.jsonl"""
import json, sys
from collections import defaultdict
acc = defaultdict(lambda: defaultdict(float))
for line in open(sys.argv[1]):
    r = json.loads(line)
    for n, v in r["servers"].items():
        a = acc[(n, r["conns"])]
        a["req"] += v["requests"]
        for k, x in v.items():
            if k.endswith("_us"):
                a[k] += x * v["requests"]
for (n, c), a in sorted(acc.items()):
    parts = {k: a[k] / a["req"] for k in a if k.endswith("_us")}
    tot = sum(parts.values())
    print(f"{n:7s} c={c:<5d} requests {int(a['req']):6d} total {tot:6.2f} us/GET  " +
          "  ".join(f"{k} {x:.2f}" for k, x in sorted(parts.items())))
