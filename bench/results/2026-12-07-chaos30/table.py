#!/usr/bin/env python3
"""One row per bench/chaos_soak.py log (its summary line and header):
python3 bench/results/2026-12-07-chaos30/table.py LOG..."""
import json
import re
import sys

tot = {}
print("| run | commit, args | s | rounds | faults | acked PUTs / DELETEs | ops | 507 | stable GETs 200 | listing pages | tool checks | violations | exit |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    text = open(path).read()
    m = re.search(r"summary (\{.*\})", text)
    head = re.search(r"^# (\S+) python3 bench/chaos_soak.py --bin \S+ --tool \S+ (.*)$", text, re.M)
    ex = re.search(r"^# exit (\d+)", text, re.M)
    if not m:
        print(f"| {path} | no summary |")
        continue
    s = json.loads(m.group(1))
    faults = ", ".join(f"{k} {v}" for k, v in sorted(s["faults"].items()))
    ops = sum(s["ops"].values())
    for k in ("seconds", "rounds", "acked_puts", "acked_deletes", "reads_stable", "listing_pages", "tool_checks"):
        tot[k] = tot.get(k, 0) + s[k]
    tot["ops"] = tot.get("ops", 0) + ops
    for k, v in s["faults"].items():
        tot.setdefault("faults", {})[k] = tot.get("faults", {}).get(k, 0) + v
    print(f"| {path.split('/')[-1]} | {head.group(1) if head else '?'} `{head.group(2) if head else ''}` | {s['seconds']:.0f} "
          f"| {s['rounds']} | {faults} | {s['acked_puts']:,} / {s['acked_deletes']:,} | {ops:,} | {s['refused_507']:,} "
          f"| {s['reads_stable']:,} | {s['listing_pages']:,} | {s['tool_checks']} | {s['violations']} | {ex.group(1) if ex else '?'} |")
if tot:
    print()
    print(f"total: {tot['seconds'] / 60:.1f} min, {tot['rounds']} rounds, {tot['ops']:,} ops, {tot['acked_puts']:,} acked PUTs, "
          f"{tot['acked_deletes']:,} acked DELETEs, {tot['reads_stable']:,} stable GETs, {tot['listing_pages']:,} listing pages, "
          f"{tot['tool_checks']} kingx-tool checks; faults: " + ", ".join(f"{k} {v}" for k, v in sorted(tot['faults'].items())))
