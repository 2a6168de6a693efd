"""Counts compaction inputs copied with >= 2 MiB live (two or more 1 MiB records), by pick reason, per binary.
Usage: bigcopies.py RUN_DIR... (logs/{bin,compare-bin}.log)"""
import os, re, sys
from collections import Counter
INPUT = re.compile(r"\(([a-z-]+): live (\d+) dead (\d+)([^)]*)\)")
for run in sys.argv[1:]:
    for name in ("bin", "compare-bin"):
        c = Counter(); n = 0
        for line in open(os.path.join(run, "logs", name + ".log"), errors="replace"):
            if "pass (" not in line or "compaction:" not in line: continue
            for why, live, dead, rest in INPUT.findall(line):
                n += 1
                if int(live) >= 2 << 20 and "left" not in rest: c[why] += 1
        print(f"{os.path.basename(run.rstrip('/'))} {name}: inputs {n}, copied with >= 2 MiB live: {sum(c.values())} {dict(c)}")
