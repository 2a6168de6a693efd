"""Explains the samples over 2x of a compaction_crash_soak.py run: for each,
what the directory held besides the live data (dead records, staged uploads,
the rest: copies of a pass in flight, hints, key runs, block rounding) and the
compaction passes and stall ends the server logged in that second and the
next (the log's clock has whole seconds; a pass line is written at its end).
Usage: explain.py SAMPLES.jsonl LOG [--live-mb 7] [--max 40]"""
import argparse
import collections
import json
import re
import time

ap = argparse.ArgumentParser()
ap.add_argument("samples")
ap.add_argument("log")
ap.add_argument("--live-mb", type=float, default=7.0)
ap.add_argument("--max", type=int, default=40)
args = ap.parse_args()

STAMP = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(\w+)\] \d+#\d+: (.*)$")
by_second = collections.defaultdict(list)
for line in open(args.log, errors="replace"):
    m = STAMP.match(line)
    if not m:
        continue
    text = m.group(3)
    if not (text.startswith("compaction:") or text.startswith("write stall")):
        continue
    if " pass picked " in text:
        continue  # the debug line of the same pass says more
    t = int(time.mktime(time.strptime(m.group(1), "%Y/%m/%d %H:%M:%S")) - time.timezone)
    by_second[t].append(text)

over = []
n = 0
for line in open(args.samples):
    s = json.loads(line)
    live = s.get("live")
    if not live or live < 0.5 * args.live_mb * (1 << 20):
        continue
    n += 1
    if s["dir"] > 2 * live:
        over.append(s)

kinds = collections.Counter()
print(f"{len(over)} of {n} samples over 2x")
for s in over:
    live, dead, staged = s["live"], s.get("dead", 0), s.get("staged", 0)
    rest = s["dir"] - live - dead - staged
    kind = "dead+staged alone over 2x" if dead + staged > live else "over 2x only with the rest (copies, hints)"
    kinds[kind] += 1
print(dict(kinds))
for s in over[:args.max]:
    live, dead, staged = s["live"], s.get("dead", 0), s.get("staged", 0)
    rest = s["dir"] - live - dead - staged
    sec = int(s["wall"])
    print(f"\n== cycle {s['cycle']} wall {s['wall']} ratio {s['dir'] / live:.3f}: live {live:.0f} dead {dead:.0f} "
          f"(backlog {s.get('backlog', 0):.0f}) staged {staged:.0f} rest {rest:.0f} segments {s.get('segments')}")
    for t in (sec, sec + 1):
        for text in by_second.get(t, []):
            print(f"  [{time.strftime('%H:%M:%S', time.gmtime(t))}] {text[:600]}")
