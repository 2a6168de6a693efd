#!/usr/bin/env python3
# Medians and paired (same round, same connection count) ratios of CPU per GET from cpu_split.py output:
#   split_summary.py RUN.jsonl...
import json, statistics, collections, sys
rows=[json.loads(l) for f in sys.argv[1:] for l in open(f)]
g=collections.defaultdict(dict)
for r in rows: g[(r['conns'],r['round'])][r['server']]=r
servers=sorted({r['server'] for r in rows})
for c in sorted({r['conns'] for r in rows}):
    for s in servers:
        v=[g[k][s] for k in g if k[0]==c and s in g[k]]
        print(f"c={c} {s:6} user {statistics.median(x['user_us_per_req'] for x in v):.2f} sys {statistics.median(x['sys_us_per_req'] for x in v):.2f} total {statistics.median(x['user_us_per_req']+x['sys_us_per_req'] for x in v):.2f} per-wait {statistics.median(x['requests_per_epoll_wait'] or 0 for x in v):.0f} n={len(v)}")
    for s in servers:
        if s in ('main',): continue
        for ref in ('main','nginx'):
            if s==ref: continue
            pr=[(g[k][s]['user_us_per_req']+g[k][s]['sys_us_per_req'])/(g[k][ref]['user_us_per_req']+g[k][ref]['sys_us_per_req']) for k in g if k[0]==c and s in g[k] and ref in g[k]]
            pu=[g[k][s]['user_us_per_req']/g[k][ref]['user_us_per_req'] for k in g if k[0]==c and s in g[k] and ref in g[k]]
            if pr: print(f"   c={c} {s}/{ref} CPU per GET paired median {statistics.median(pr):.3f} [{min(pr):.2f}-{max(pr):.2f}], user {statistics.median(pu):.3f} [{min(pu):.2f}-{max(pu):.2f}]")
