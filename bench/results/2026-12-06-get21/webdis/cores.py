#!/usr/bin/env python3
"""Where each server's req/s is set in a bench/compare run: per get100 cell, the medians of the
server's, its backend's (redis), the load generator's (wrk -t1) and other work's CPU in cores,
req/s, and wrk's CPU per request (µs). wrk at ~1 core is its own ceiling on this 2-core machine.

    python3 cores.py SUMMARY.json [SCENARIO]
"""
import json, statistics as st, sys

def main():
    path = sys.argv[1]
    scen = sys.argv[2] if len(sys.argv) > 2 else "get100"
    cells = {}
    for r in json.load(open(path))["runs"]:
        if r.get("ok") and r["scenario"] == scen:
            cells.setdefault((r["conns"], r["server"]), []).append(r)
    print(f"{'c':>5} {'server':<22} {'req/s':>8} {'server':>7} {'redis':>6} {'wrk':>5} {'other':>6} {'wrk us/req':>10} n")
    for (c, srv), rs in sorted(cells.items()):
        m = lambda f: st.median(x[f] for x in rs)
        wrk_us = st.median(x["wrk_cores"] * 1e6 / x["rps"] for x in rs)
        print(f"{c:>5} {srv:<22} {m('rps'):>8.0f} {m('server_cores'):>7.2f} {m('backend_cores'):>6.2f} "
              f"{m('wrk_cores'):>5.2f} {m('other_cores'):>6.2f} {wrk_us:>10.2f} {len(rs)}")

main()
