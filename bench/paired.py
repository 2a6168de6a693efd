#!/usr/bin/env python3
"""Paired (same round) ratios of one server to others, from bench/compare summary.json files.

    bench/paired.py SERVER PEER[,PEER...] summary.json...   (the rounds of several files pool)

Per scenario and connection count, for each PEER: the median over rounds of SERVER ÷ PEER for
req/s, for requests per CPU-second from utime+stime (clock ticks), and for requests per
CPU-second from the scheduler's exact run time (schedstat, "sched"), each with its range and the
per-round sched values, then each side's CPU µs per request (ticks, sched). Two instances of one
binary (`--kingx-alt aa=<the --kingx binary>`, server kingx-ev1@aa) give the A/A spread: a
difference smaller than that pair's is not resolved. Python standard library only.
"""
import json
import statistics
import sys


def fmt_range(xs):
    return f"{statistics.median(xs):.3f} [{min(xs):.3f}-{max(xs):.3f}]"


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    srv, peers, files = argv[0], argv[1].split(","), argv[2:]
    rows = {}
    for i, path in enumerate(files):
        with open(path) as f:
            for r in json.load(f)["runs"]:
                if r.get("ok"):
                    rows[(i, r["round"], r["scenario"], r["conns"], r["server"])] = r
    cells = sorted({(k[2], k[3]) for k in rows})
    for peer in peers:
        for scen, conns in cells:
            rps, tick, sched, cpu = [], [], [], []
            for (i, rnd, s, c, name), r in sorted(rows.items()):
                if (s, c, name) != (scen, conns, srv):
                    continue
                o = rows.get((i, rnd, s, c, peer))
                if o is None:
                    continue
                rps.append(r["rps"] / o["rps"])
                if r.get("req_per_cpu_s") and o.get("req_per_cpu_s"):
                    tick.append(r["req_per_cpu_s"] / o["req_per_cpu_s"])
                if r.get("req_per_sched_s") and o.get("req_per_sched_s"):
                    sched.append(r["req_per_sched_s"] / o["req_per_sched_s"])
                cpu.append(f"{r['cpu_us_per_req']}/{o['cpu_us_per_req']}"
                           f"({r.get('sched_us_per_req')}/{o.get('sched_us_per_req')})")
            if not rps:
                continue
            line = f"{srv} / {peer} {scen} c={conns} (n={len(rps)}): req/s {fmt_range(rps)}"
            if tick:
                line += f", req per CPU-s ticks {fmt_range(tick)}"
            if sched:
                line += (f", req per CPU-s sched {fmt_range(sched)} rounds "
                         + " ".join(f"{x:.3f}" for x in sched))
            print(line)
            print(f"    CPU us/req ticks (sched) {srv}/{peer}: {' '.join(cpu)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
