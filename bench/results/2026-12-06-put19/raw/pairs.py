#!/usr/bin/env python3
"""Paired ratios of writer_threads.py rows: for each (conns, round), B / A of req/s and of CPU per PUT
(writer process, its threads, the worker) and of the keyspace's entries read / looked up per PUT;
the median over rounds, with every round's ratio.
Usage: pairs.py ROWS.jsonl A B"""
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
a, b = sys.argv[2], sys.argv[3]
keys = ["rps", "writer_us_per_put", "writer/main:kingx-writer_us_per_put", "writer/kingx-keyview_us_per_put",
        "writer/kingx-compact_us_per_put", "writer/kingx-extend_us_per_put", "worker_us_per_put",
        "m/kingx_keyspace_entries_merged_total", "m/kingx_keyspace_entries_resolved_total",
        "m/kingx_keyspace_entries_repaired_total", "m/kingx_writer_batch_size_sum"]
by = {}
for r in rows:
    by.setdefault((r["conns"], r["round"]), {})[r["label"]] = r
for conns in sorted({c for c, _ in by}):
    print(f"c={conns}: {b} / {a}, median [rounds]; absolute medians {a} | {b}")
    for k in keys:
        ratios, va, vb = [], [], []
        for (c, rnd), pair in sorted(by.items()):
            if c != conns or a not in pair or b not in pair: continue
            x, y = pair[a].get(k), pair[b].get(k)
            if x is not None: va.append(x)
            if y is not None: vb.append(y)
            if x and y is not None: ratios.append(y / x)
        if not va and not vb: continue
        med = lambda v: statistics.median(v) if v else float("nan")
        print(f"  {k:45s} {med(ratios):6.2f} [{', '.join(f'{x:.2f}' for x in ratios)}]   {med(va):10.3f} | {med(vb):10.3f}")
    loads = [r["uptime"][0] for (c, _), p in sorted(by.items()) if c == conns for r in p.values()]
    print(f"  load (1-min) during the rows: {min(loads)}-{max(loads)}")
