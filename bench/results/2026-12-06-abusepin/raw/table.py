#!/usr/bin/env python3
"""The NOTE's tables from roundN-{pinned,unpinned}/abuse.json: per case and server, the wrk ratio,
the server's CPU per request alone -> under abuse, their ratio, the cores serving the abuse took, and
for the garbage flood the server CPU per garbage connection and per MB (from the flood's counters;
rounds without --steady only, whose counters cover the abused window and the 3 s of new clients).
Usage: table.py RESULTS_DIR (window of the abused phase: --settle + --duration = 14 s)."""
import glob
import json
import os
import sys

d = sys.argv[1]
window_s = 14
rows = {}
for path in sorted(glob.glob(os.path.join(d, "round*-*/abuse.json"))):
    tag = os.path.basename(os.path.dirname(path))
    rnd, mode = tag.split("-", 1)
    for r in json.load(open(path))["rows"]:
        if "abuse_rps" in r:
            rows.setdefault((mode, r["case"], r["server"]), []).append((rnd, r))


def f(x, n=2):
    return "" if x is None else f"{x:.{n}f}"


for mode in ("pinned", "unpinned"):
    print(f"\n### {mode}\n")
    print("| case | server | wrk ratio (rounds) | server CPU µs/req alone → abuse (rounds) | CPU ratio (rounds) | "
          "abuse's server cores (rounds) | abuser cores | load |")
    print("|---|---|---|---|---|---|---|---|")
    for (m, case, server), rs in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        if m != mode:
            continue
        cells = []
        for rnd, r in rs:
            b, a = r["base_server_cpu_us_per_req"], r["abuse_server_cpu_us_per_req"]
            cells.append((r["ratio"], f"{f(b, 1)} → {f(a, 1)}", b / a if a else None,
                          (a - b) * r["abuse_rps"] / 1e6 if a and b else None, r.get("abuse_cpu_cores"),
                          f"{r['loadavg_before']:.0f}–{r['loadavg_after']:.0f}"))
        j = " / ".join
        print(f"| {case} | {server} | {j(f(c[0], 3) for c in cells)} | {j(c[1] for c in cells)} | "
              f"{j(f(c[2], 3) for c in cells)} | {j(f(c[3], 3) for c in cells)} | {j(str(c[4]) for c in cells)} | "
              f"{j(c[5] for c in cells)} |")
    steady = [(k, [(rnd, r) for rnd, r in rs if "steady_rps" in r]) for k, rs in sorted(rows.items(),
              key=lambda kv: (kv[0][1], kv[0][2])) if k[0] == mode]
    if any(rs for _, rs in steady):
        print("\nSteady state (--steady: fresh wrk connections once the abuse is built up):\n")
        print("| case | server | wrk ratio (rounds) | server CPU µs/req alone → steady | CPU ratio | abuse's server cores |")
        print("|---|---|---|---|---|---|")
        for (m, case, server), rs in steady:
            if not rs:
                continue
            j = " / ".join
            cells = [(r.get("steady_ratio"), f"{f(r['base_server_cpu_us_per_req'], 1)} → "
                      f"{f(r['steady_server_cpu_us_per_req'], 1)}", r.get("steady_cpu_ratio"),
                      (r["steady_server_cpu_us_per_req"] - r["base_server_cpu_us_per_req"]) * r["steady_rps"] / 1e6
                      if r["steady_server_cpu_us_per_req"] else None)
                     for _, r in rs]  # None: wrk completed no request (no fresh connection got in)
            print(f"| {case} | {server} | {j(f(c[0], 3) for c in cells)} | {j(c[1] for c in cells)} | "
                  f"{j(f(c[2], 3) for c in cells)} | {j(f(c[3], 3) for c in cells)} |")
    for (m, case, server), rs in sorted(rows.items()):
        if m != mode or case != "garbage":
            continue
        for rnd, r in rs:
            if "steady_rps" in r:
                continue  # the flood's counters then also cover the steady phase: not apportioned here
            try:
                g = json.loads(r["abuse_tail"][0])
            except (ValueError, IndexError, KeyError):
                continue
            extra_s = (r["abuse_server_cpu_us_per_req"] - r["base_server_cpu_us_per_req"]) * r["abuse_rps"] * window_s / 1e6
            print(f"- garbage {server} {rnd}: {g['connections']} connections, {g['bytes_sent'] / 1e6:.0f} MB sent "
                  f"({g['bytes_sent'] / max(1, g['connections']) / 1024:.0f} KiB per connection); server CPU serving "
                  f"it ≈ {extra_s:.2f} s: {extra_s * 1e6 / max(1, g['connections']):.0f} µs per connection, "
                  f"{extra_s * 1e3 / max(1, g['bytes_sent'] / 1e6):.2f} ms per MB")
