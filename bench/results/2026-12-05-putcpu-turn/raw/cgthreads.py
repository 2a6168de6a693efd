#!/usr/bin/env python3
"""Instructions per durable PUT by process and thread, from bench/profile.py's output directory
(callgrind, one file per process; its *.inclusive.txt made by callgrind_annotate --inclusive=yes).

    python3 cgthreads.py DIR [PATTERN ...]

A thread's instructions are the inclusive cost of its root: std::thread's _M_run for the writer
process's threads (sync thread, key view, compaction, segment extender), main() minus those for
the writer loop (the writer process's main thread runs the loop), the whole file for the worker.
PUTs = profile.json's `requests` (the worker's answers in the window). Extra PATTERNs (regular
expressions) print the inclusive cost per PUT of every matching function (largest first)."""
import json
import os
import re
import sys

d = sys.argv[1]
pats = sys.argv[2:]
prof = json.load(open(os.path.join(d, "profile.json")))
case = prof["cases"][0]
n = case["requests"]
md = case.get("metrics_delta", {})
print(f"{d}: {n} PUTs in the window; uptime {prof.get('uptime_start')}")
if md:
    b = md.get("kingx_writer_batches_total") or md.get("kingx_writer_batch_ops_count")
    print("  metrics delta:", {k: v for k, v in md.items() if "batch" in k or "fsync" in k})


def rows(path):
    out = []
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line)
        if m:
            out.append((int(m.group(1).replace(",", "")), m.group(2)))
    return out


for f in sorted(os.listdir(d)):
    if not f.endswith(".inclusive-all.txt"):
        continue
    r = rows(os.path.join(d, f))
    total = next((v for v, name in r if "PROGRAM TOTALS" in name), 0)
    names = " ".join(name for _, name in r[:200])
    kind = "writer" if "WriterLoop" in names else ("worker" if "uv_run" in names else "master/other")
    print(f"\n{f} ({kind}): {total / n:,.0f} per PUT")
    if kind == "writer":
        roots = [("writer loop (WriterLoop::Run)", r"WriterLoop::Run\(\)"),
                 ("key view thread (Keyspace::Loop)", r"Keyspace::Loop\(\)"),
                 ("  of it merges (Keyspace::MergeRuns)", r"Keyspace::MergeRuns\("),
                 ("  of it tail flushes (Keyspace::FlushFrozenTail)", r"Keyspace::FlushFrozenTail\(\)"),
                 ("sync thread", r"SyncThread.*_M_run"),
                 ("compaction thread", r"CompactionThread.*_M_run"),
                 ("segment extender thread", r"SegmentExtender.*_M_run")]
        threads = 0
        for label, pat in roots:
            v = max((v for v, name in r if re.search(pat, name)), default=0)
            if not label.startswith("  "):
                threads += v
            print(f"  {label:60s} {v / n:10,.0f}")
        print(f"  {'rest (outside those roots)':60s} {(total - threads) / n:10,.0f}")
    for p in pats:
        seen = set()
        for v, name in r:
            if re.search(p, name) and name not in seen and v / n >= 5:
                seen.add(name)
                print(f"    {name[:112]:112s} {v / n:10,.0f}")
