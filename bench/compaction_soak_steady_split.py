"""The steady samples over 2x of compaction_crash_soak.py runs (the gauges did
not move while the directory was measured; live at least the run's --live-mb
/ 2, as raw/table.py of 2026-12-06-soak18 counts them), split by what is on
top of the live data: "copy" when the rest (directory - live - dead - staged:
a compaction copy in flight, a batch being written, hints, key runs) is the
larger part, "dead" when the reclaimable dead bytes are.
Usage: bench/compaction_soak_steady_split.py RUN_DIR...   (each with samples-bin.jsonl,
samples-compare-bin.jsonl, runs.jsonl[.gz])"""
import gzip
import json
import os
import sys


def lines(path):
    if os.path.exists(path):
        return open(path)
    return gzip.open(path + ".gz", "rt")


print("| run | binary | steady samples | over 2x | of which copy (rest > dead) | of which dead | largest copy one (rest/L) |")
print("|---|---|---|---|---|---|---|")
for run in sys.argv[1:]:
    floor = None
    for line in lines(f"{run}/runs.jsonl"):
        d = json.loads(line)
        if "summary" in d:
            floor = d["summary"]["live_mb_target"] * (1 << 20) / 2
    for name in ("bin", "compare-bin"):
        n = over = copy = dead = 0
        copy_max = 0.0
        for line in lines(f"{run}/samples-{name}.jsonl"):
            r = json.loads(line)
            live = r.get("live")
            if not live or live < floor or not r.get("steady"):
                continue
            n += 1
            if r["dir"] <= 2 * live:
                continue
            over += 1
            d, s = r.get("dead", 0), r.get("staged", 0)
            rest = r["dir"] - live - d - s
            if rest > d:
                copy += 1
                copy_max = max(copy_max, rest / live)
            else:
                dead += 1
        print(f"| {os.path.basename(run)} | {name} | {n:,} | {over} | {copy} | {dead} | {copy_max:.2f} |")
