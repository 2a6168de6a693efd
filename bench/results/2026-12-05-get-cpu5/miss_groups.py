#!/usr/bin/env python3
"""Simulated cache misses per GET by group (index probe, record read, sweep timer, the rest), from
bench/profile.py's output directories (profile.json + *.misses.txt): the process that serves the
requests only (kingx's worker: the one whose misses name Connection::Feed; nginx's one process).
usage: miss_groups.py PROFILE_DIR..."""
import re, sys, glob, json
groups = {
 "index probe": ["Probe(", "ProbeFor", "StillFound"],
 "record read": ["DecodeRecordHeader", "Checksum64", "memcmp", "XXH3", "ReadRecord", "SegmentCache::Read"],
 "sweep timer (per second, not per GET)": ["DeadlineMs", "OnSweep", "HoldsIdleMemory"],
}
def load(path):
    rows = []
    for line in open(path, errors="replace"):
        m = re.match(r"\s*((?:[\d,]+(?: \([\s\d.]+%\))?\s+|\.\s+){5})(\S.*)$", line)
        if not m or "PROGRAM TOTALS" in line: continue
        nums = [0 if x == "." else int(x.replace(",", "")) for x in re.findall(r"([\d,]+|\.)(?: \([\s\d.]+%\))?", m.group(1))]
        if len(nums) != 5: continue
        rows.append((m.group(2), nums))
    return rows
for d in sys.argv[1:]:
    prof = json.load(open(d + "/profile.json"))
    for c in prof["cases"]:
        n = c["requests"]
        for f, p in c["per_request_by_process"].items():
            try:
                text = open(f"{d}/{f}.misses.txt", errors="replace").read()
            except OSError:
                continue
            if "Connection::Feed" not in text and "ngx_" not in text:
                continue  # the master or the writer
            rows = load(f"{d}/{f}.misses.txt")
            tot = [0]*5
            out = {}
            for name, nums in rows:
                g = next((g for g, keys in groups.items() if any(k in name for k in keys)), "other")
                if c["case"].startswith("nginx"): g = "other"
                out.setdefault(g, [0]*5)
                out[g] = [a+b for a, b in zip(out[g], nums)]
            print(f"{d.split('/')[-1]} {c['case']} conns={c['conns']} answers={n} Ir/GET={p['Ir']} I1mr={p['I1mr']} D1={p['D1mr']+p['D1mw']:.1f} LL={p['DLmr']+p['DLmw']:.1f}")
            for g, v in out.items():
                print(f"   {g:40s} D1 {(v[0]+v[1])/n:6.2f}  LL {(v[2]+v[3])/n:6.2f}")
