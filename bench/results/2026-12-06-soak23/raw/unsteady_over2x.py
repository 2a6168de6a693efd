#!/usr/bin/env python3
"""The samples over 2x of a crash-soak run (bench/compaction_crash_soak.py --out DIR), with the ratio
against each of the two gauge reads around the directory's measure: a sample whose live bytes fell
between the reads (a burst of deletes, a pass deleting segments) measured the directory against
the later, smaller live data.  Counts the samples the table counts (live >= half of --live-mb).
usage: unsteady_over2x.py LIVE_MB DIR..."""
import json, os, sys

MIB = 1 << 20
live_mb = float(sys.argv[1])
print("| run | binary | samples over 2x | of them steady | over 2x against the larger live read too | largest of those |")
print("|---|---|---|---|---|---|")
for d in sys.argv[2:]:
    for name in ("bin", "compare-bin"):
        p = os.path.join(d, f"samples-{name}.jsonl")
        if not os.path.exists(p):
            continue
        over = steady = both = 0
        largest = 0.0
        for line in open(p):
            r = json.loads(line)
            live = r.get("live")
            if not live or live < 0.5 * live_mb * MIB or r["dir"] <= 2 * live:
                continue
            over += 1
            steady += bool(r.get("steady"))
            top = max(live, r.get("live_before") or 0)
            if r["dir"] > 2 * top:
                both += 1
                largest = max(largest, r["dir"] / top)
        print(f"| {os.path.basename(d)} | {name} | {over} | {steady} | {both} | {largest:.3f} |")
