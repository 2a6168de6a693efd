#!/usr/bin/env python3
"""One line per snapshot that bench/compaction_crash_soak.py took at a sample
over 2x: the sample (dir, live, ratio) and, from the listing taken just after
it, the compaction output in progress (*.tmp), dead/live, keys/ and hint bytes.

    python3 classify_snapshots.py DIR   (the soak's --out, or a copy of its snapshots)
"""
import glob, os, re, sys
d = sys.argv[1]
for f in sorted(glob.glob(os.path.join(d, "**", "*-snap*.txt"), recursive=True)):
    txt = open(f).read().splitlines()
    head = txt[0]
    tmp = sum(int(l.split()[0]) for l in txt[1:] if l.strip().endswith(".tmp"))
    m = {l.split()[0]: float(l.split()[1]) for l in txt if l.startswith("kingx_") and len(l.split()) == 2}
    live, dead = m.get("kingx_engine_live_bytes", 0), m.get("kingx_engine_dead_bytes", 0)
    keys = sum(int(l.split()[0]) for l in txt[1:] if " keys/" in l)
    hints = sum(int(l.split()[0]) for l in txt[1:] if l.strip().endswith(".hint"))
    print(f"{os.path.basename(f)}: {head} | at listing: tmp {tmp} dead/live {dead/live if live else 0:.2f} "
          f"keys/ {keys} hints {hints} batches {m.get('kingx_writer_batches_total')}")
