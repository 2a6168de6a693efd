#!/usr/bin/env python3
"""Paired per-round ratios branch ÷ main from a bench/durable_put_probe.py probe.json:
req/s, mean fdatasync time, fdatasyncs a request waited for, server CPU per request.
Usage: pairs.py probe.json"""
import json
import statistics as st
import sys

r = json.load(open(sys.argv[1]))
rows = r["rows"]
print(r.get("command", ""))
for c in sorted({x["conns"] for x in rows}):
    by = {}
    for x in rows:
        if x["conns"] == c:
            by.setdefault(x["round"], {})[x["bin"]] = x
    rds = [rd for rd in sorted(by) if "main" in by[rd] and "branch" in by[rd]]
    print(f"conns {c} ({len(rds)} paired rounds)")
    for k in ["rps", "mean_fsync_us", "fsyncs_waited_per_request", "ops_per_fsync",
              "cpu_us_per_req_kingx-worker", "cpu_us_per_req_kingx-writer"]:
        m = [by[rd]["main"][k] for rd in rds]
        b = [by[rd]["branch"][k] for rd in rds]
        ratios = [bb / mm for bb, mm in zip(b, m)]
        print(f"  {k:32s} main {m} branch {b} ratios {[round(x, 2) for x in ratios]} "
              f"median {st.median(ratios):.2f}")
    srv = [(by[rd]["branch"]["cpu_us_per_req_kingx-worker"] + by[rd]["branch"]["cpu_us_per_req_kingx-writer"]) /
           (by[rd]["main"]["cpu_us_per_req_kingx-worker"] + by[rd]["main"]["cpu_us_per_req_kingx-writer"]) for rd in rds]
    print(f"  {'server CPU per request':32s} ratios {[round(x, 2) for x in srv]} median {st.median(srv):.2f}")
