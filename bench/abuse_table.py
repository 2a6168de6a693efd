#!/usr/bin/env python3
"""The NOTE's tables from roundN/abuse.json (bench/abuse.py --pin --steady, servers kingx, ref,
nginx) and cost-N/cost.json (bench/abuse_cost.py). Per case and server, one cell per round:
wrk throughput under abuse / alone (whole abused window, then the steady phase), the server's CPU
per wrk request alone / in the steady phase (the CPU ratio: the share of its throughput a server
limited by its own CPU keeps), and the largest worker memory (anonymous RSS) against kingx's
budget. Usage: bench/abuse_table.py RESULTS_DIR [REF] (the directory holding roundN/ and cost-N/;
REF: the reference server's name in those runs, default ref; main in 2026-12-06-abuse17)."""
import glob
import json
import os
import sys

d = sys.argv[1]
ref = sys.argv[2] if len(sys.argv) > 2 else "ref"
rows = {}
for path in sorted(glob.glob(os.path.join(d, "round*/abuse.json"))):
    rnd = os.path.basename(os.path.dirname(path))
    for r in json.load(open(path))["rows"]:
        if "abuse_rps" in r:
            rows.setdefault((r["case"], r["server"]), []).append((rnd, r))


def f(x, n=2):
    return "–" if x is None else f"{x:.{n}f}"


order = {"kingx": 0, ref: 1, "nginx": 2}
j = " / ".join
print("| case | server | wrk ratio, abused window | wrk ratio, steady | CPU µs/req alone → steady | CPU ratio, steady "
      "| worker anon MiB (budget 112) | load |")
print("|---|---|---|---|---|---|---|---|")
for (case, server), rs in sorted(rows.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9))):
    rr = [r for _, r in rs]
    print(f"| {case} | {server} | {j(f(r.get('ratio'), 3) for r in rr)} | {j(f(r.get('steady_ratio'), 3) for r in rr)} | "
          f"{j(f(r['base_server_cpu_us_per_req'], 1) + ' → ' + f(r.get('steady_server_cpu_us_per_req'), 1) for r in rr)} | "
          f"{j(f(r.get('steady_cpu_ratio'), 3) for r in rr)} | "
          f"{j(f(r['max_worker_anon_kib'] / 1024, 1) for r in rr)} | "
          f"{j(str(round(r['loadavg_before'])) for r in rr)} |")
# kingx against the reference, per case: the ratios of the two side by side (same round, same machine).
print(f"\nkingx ÷ {ref}, per round (steady-phase CPU per request, {ref}'s ÷ kingx's: above 1 = kingx spends less):\n")
print(f"| case | {ref} µs/req ÷ kingx µs/req, steady (rounds) | abused window (rounds) |")
print("|---|---|---|")
for case in sorted({c for c, _ in rows}):
    k = dict(rows.get((case, "kingx"), []))
    m = dict(rows.get((case, ref), []))
    cells_s, cells_a = [], []
    for rnd in sorted(set(k) & set(m)):
        a, b = k[rnd].get("steady_server_cpu_us_per_req"), m[rnd].get("steady_server_cpu_us_per_req")
        cells_s.append(f(b / a, 3) if a and b else "–")
        a, b = k[rnd].get("abuse_server_cpu_us_per_req"), m[rnd].get("abuse_server_cpu_us_per_req")
        cells_a.append(f(b / a, 3) if a and b else "–")
    print(f"| {case} | {j(cells_s)} | {j(cells_a)} |")
crows = []
for path in sorted(glob.glob(os.path.join(d, "cost-*/cost.json"))):  # cost-N: bench/abuse_cost.py run after round N
    crows += json.load(open(path))["rows"]
if crows:
    print("\nServer CPU per unit of abuse, no wrk (bench/abuse_cost.py; rounds):\n")
    print("| case | server | µs per unit | units | garbage: ms per MB sent | lingering bytes per connection | "
          "writes that found the socket full per unit | load |")
    print("|---|---|---|---|---|---|---|---|")
    for case, server in sorted({(r["case"], r["server"]) for r in crows}, key=lambda k: (k[0], order.get(k[1], 9))):
        rs = [r for r in crows if r["case"] == case and r["server"] == server]

        def per_unit(r, name):
            c = (r.get("counters") or {}).get(name)
            return f(c / r["units"], 2) if c is not None and r.get("units") else "–"
        print(f"| {case} | {server} | {j(f(r['server_cpu_us_per_unit'], 1) for r in rs)} | {j(str(r['units']) for r in rs)} | "
              f"{j(f(r.get('server_cpu_ms_per_mb_sent'), 3) for r in rs)} | "
              f"{j(per_unit(r, 'kingx_http_linger_discarded_bytes_total') for r in rs)} | "
              f"{j(per_unit(r, 'kingx_http_writes_blocked_total') for r in rs)} | "
              f"{j(str(round(r['loadavg_before'])) for r in rs)} |")
