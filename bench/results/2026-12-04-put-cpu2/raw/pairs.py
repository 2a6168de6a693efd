"""Paired per-round ratios (branch / main) of a durable_put_probe.py run, and the per-request fault and
context-switch counts of each side. Usage: python3 pairs.py probe.json [A B] (labels, default main branch)."""
import json
import statistics as st
import sys

r = json.load(open(sys.argv[1]))
a, b = (sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else ("main", "branch")
rows = r["rows"]
print(r["command"])
for c in sorted({x["conns"] for x in rows}):
    print("conns", c)
    by = {}
    for x in rows:
        if x["conns"] == c:
            by.setdefault(x["round"], {})[x["bin"]] = x
    rds = [rd for rd in sorted(by) if a in by[rd] and b in by[rd]]
    for k in ["rps", "cpu_us_per_req_kingx-worker", "cpu_us_per_req_kingx-writer", "ops_per_batch",
              "mean_fsync_us", "fsync_busy_share"]:
        ratios = [by[rd][b][k] / by[rd][a][k] for rd in rds if by[rd][a][k]]
        print(f"  {k}: {a} {[by[rd][a][k] for rd in rds]} {b} {[by[rd][b][k] for rd in rds]}"
              f" ratios {[round(x, 2) for x in ratios]} median {round(st.median(ratios), 2)}")
    tot = [(by[rd][b]["cpu_us_per_req_kingx-worker"] + by[rd][b]["cpu_us_per_req_kingx-writer"]) /
           (by[rd][a]["cpu_us_per_req_kingx-worker"] + by[rd][a]["cpu_us_per_req_kingx-writer"]) for rd in rds]
    print(f"  server cpu per req: ratios {[round(x, 2) for x in tot]} median {round(st.median(tot), 2)}")
    for k in ["faults_per_req_kingx-worker", "faults_per_req_kingx-writer",
              "switches_per_req_kingx-worker", "switches_per_req_kingx-writer"]:
        if all(k in by[rd][a] and k in by[rd][b] for rd in rds):
            print(f"  {k}: {a} {[by[rd][a][k] for rd in rds]} {b} {[by[rd][b][k] for rd in rds]}")
