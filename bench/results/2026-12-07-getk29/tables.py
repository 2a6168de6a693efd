#!/usr/bin/env python3
"""Per-GET figures of the callgrind runs in this directory (cg-*/profile.json): the worker process's
instructions, data reads/writes, simulated D1 and last-level misses, clock_gettime calls, and the
last-level misses of the functions that touch the connection's own state (its first touch per GET).
usage: python3 tables.py (from this directory)"""
import glob
import json

CONN_FUNCS = ("OnConnIo", "OnAlloc", "uv_fileno", "Connection::Feed", "0x0000000000022a60")

print("| run | requests | Ir | D1mr | D1mw | DLmr | of which the connection's state | clock_gettime |")
print("|---|---|---|---|---|---|---|---|")
for d in sorted(glob.glob("cg-*/profile.json")):
    j = json.load(open(d))
    for case in j["cases"]:
        for proc, v in case["per_request_by_process"].items():
            if v.get("Ir", 0) < 100:
                continue
            conn = sum(m["DLmr"] for f, m in v.get("misses_by_function", {}).items()
                       if any(k in f for k in CONN_FUNCS))
            clk = v.get("clock_gettime_calls", "-")
            print(f"| {d.split('/')[0]} {case['case']} | {case['requests']} | {v['Ir']} | {v['D1mr']} | {v['D1mw']} "
                  f"| {v['DLmr']} | {conn:.2f} | {clk} |")
