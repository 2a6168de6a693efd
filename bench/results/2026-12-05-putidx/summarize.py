#!/usr/bin/env python3
"""Summary of a durable_put_probe.py run (probe.json): per binary and connection count, the median
req/s and the per-round ratio new / main of req/s and of server CPU per request (interleaved
rounds, so each pair shares the machine's load of its moment); and the per-thread busy, kernel
and run-queue-wait shares (medians over rounds).

    python3 summarize.py DIR/probe.json [BASE=main] [OTHER=new]"""
import json
import statistics
import sys

rows = json.load(open(sys.argv[1]))["rows"]
base = sys.argv[2] if len(sys.argv) > 2 else "main"
other = sys.argv[3] if len(sys.argv) > 3 else "new"


def cpu(r):
    return sum(v for k, v in r.items() if k.startswith("cpu_us_per_req_"))


def key(k):
    # #0 of the writer is its loop thread; #4 in a binary without thread names is the sync thread.
    return k.replace("kingx-", "").replace("writer/#4", "writer/sync").replace("writer/#0", "writer/loop") \
            .replace("worker/#0", "worker")


for c in sorted({r["conns"] for r in rows}):
    print(f"c={c}")
    for b in (base, other):
        rs = [r for r in rows if r["conns"] == c and r["bin"] == b]
        if not rs:
            continue
        print(f"  {b:5s} req/s median {statistics.median(r['rps'] for r in rs):8.0f}  "
              f"CPU us/req median {statistics.median(cpu(r) for r in rs):6.1f}  "
              f"ops/commit median {statistics.median(r['ops_per_batch'] or 0 for r in rs):6.1f}  "
              f"fsync busy share {statistics.median(r['fsync_busy_share'] for r in rs):.2f}")
        cols = {}
        for r in rs:
            for k, v in r.items():
                if k[:5] in ("busy_", "runq_") or k[:4] == "sys_":
                    cols.setdefault(key(k), []).append(v)
        shown = {k: statistics.median(v + [0] * (len(rs) - len(v))) for k, v in cols.items()}
        print("     ", ", ".join(f"{k} {v:.2f}" for k, v in sorted(shown.items()) if v >= 0.02))
    pairs = []
    for rnd in sorted({r["round"] for r in rows}):
        a = [r for r in rows if r["conns"] == c and r["bin"] == base and r["round"] == rnd]
        n = [r for r in rows if r["conns"] == c and r["bin"] == other and r["round"] == rnd]
        if a and n:
            pairs.append((n[0]["rps"] / a[0]["rps"], cpu(n[0]) / cpu(a[0])))
    if pairs:
        rr = [p[0] for p in pairs]
        cc = [p[1] for p in pairs]
        print(f"  {other}/{base} req/s median {statistics.median(rr):.2f} (rounds {min(rr):.2f}-{max(rr):.2f}); "
              f"CPU per req median {statistics.median(cc):.2f} ({min(cc):.2f}-{max(cc):.2f})")
