#!/usr/bin/env python3
"""µs per request by DSO (kernel, the server binary, libc, libuv, vdso) of every perfpair.py run:
the DSO's share of the perf samples times the run's schedstat µs per request.
usage: dsosplit.py DIR   (DIR holds runs.jsonl and the *.dso.txt reports)"""
import json, os, re, sys
d = sys.argv[1]
for rec in (json.loads(l) for l in open(os.path.join(d, "runs.jsonl"))):
    tag = f"r{rec['round']}-c{rec['conns']}-{rec['server']}"
    path = os.path.join(d, tag + ".dso.txt")
    if not os.path.exists(path):
        continue
    parts = {}
    for line in open(path):
        m = re.match(r"\s+([\d.]+)%\s+(\S+)", line)
        if m:
            parts[m.group(2)] = float(m.group(1)) / 100 * rec["sched_us"]
    kern = parts.pop("[kernel.kallsyms]", 0.0)
    user = sum(parts.values())
    print(f"{tag:18s} load {rec['load1']:>6s} sched {rec['sched_us']:6.2f} us/req: kernel {kern:5.2f} user {user:5.2f} ("
          + ", ".join(f"{k} {v:.2f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]) if v >= 0.05) + ")")
