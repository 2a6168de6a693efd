#!/usr/bin/env python3
"""Per-GET table of split.py's runs.jsonl: worker thread (kingx-worker / nginx) user, sys (ticks), run (schedstat),
minor faults and context switches per GET, per run; then medians per (conns, server).
    python3 table.py runs.jsonl"""
import json, statistics, sys, os
TCK = os.sysconf("SC_CLK_TCK")
rows = [json.loads(l) for l in open(sys.argv[1])]
rows = [r for r in rows if r.get("requests")]
acc = {}
print("round conns server requests user_us sys_us run_us minflt_per_get vcsw_per_get load1")
for r in rows:
    n = r["requests"]
    w = {f: 0 for f in ("utime", "stime", "run_ns", "minflt", "vcsw")}
    for k, d in r["tasks"].items():
        if k.endswith(":kingx-worker") or k.endswith(":nginx"):
            for f in w:
                w[f] += d[f]
    v = (1e6 * w["utime"] / TCK / n, 1e6 * w["stime"] / TCK / n, w["run_ns"] / n / 1000, w["minflt"] / n, w["vcsw"] / n)
    print(r["round"], r["conns"], r["server"], n, *(f"{x:.4f}" if i >= 3 else f"{x:.2f}" for i, x in enumerate(v)), r["load1"])
    acc.setdefault((r["conns"], r["server"]), []).append(v)
print("\nmedian per (conns, server): user_us sys_us run_us")
for (c, s), vs in sorted(acc.items()):
    print(c, s, *(f"{statistics.median(x[i] for x in vs):.2f}" for i in range(3)))
