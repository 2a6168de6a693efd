"""The steady samples over 2x of compaction_crash_soak.py runs (the gauges
did not move while the directory was measured), each with dead / live,
staged / live and the rest / live (a copy in flight, a batch being written,
hints, key runs), and the passes of that second that copied an input holding
more than a quarter / half of the live data then (the log's clock has whole
seconds; a pass line is written at its end).
Usage: steady_over.py RUN_DIR NAME LIVE_FLOOR_MB   (NAME: bin or compare-bin)"""
import collections
import json
import re
import sys
import time

run, name, floor = sys.argv[1], sys.argv[2], float(sys.argv[3]) * (1 << 20)
STAMP = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[\w+\] \d+#\d+: (.*)$")
INPUT = re.compile(r"(\d+) \(([a-z-]+): live (\d+) dead (\d+)")
passes = collections.defaultdict(list)
for line in open(f"{run}/logs/{name}.log", errors="replace"):
    m = STAMP.match(line)
    if not m or "pass (" not in m.group(2):
        continue
    t = int(time.mktime(time.strptime(m.group(1), "%Y/%m/%d %H:%M:%S")) - time.timezone)
    passes[t].append(m.group(2))
for line in open(f"{run}/samples-{name}.jsonl"):
    r = json.loads(line)
    live = r.get("live")
    if not live or live < floor or not r.get("steady") or r["dir"] <= 2 * live:
        continue
    dead, staged = r.get("dead", 0), r.get("staged", 0)
    rest = r["dir"] - live - dead - staged
    big = []
    for sec in (int(r["wall"]), int(r["wall"]) + 1):
        for p in passes[sec]:
            kind = "catch-up" if "catch-up" in p else "dead-only" if "dead-only" in p else "ordinary"
            for sid, why, ilive, idead in INPUT.findall(p):
                if int(ilive) > live / 4:
                    big.append(f"{kind} {why} X={int(ilive) / live:.2f}L dead {int(idead) / live:.2f}L")
    print(f"cycle {r['cycle']} ratio {r['dir'] / live:.3f}: dead {dead / live:.2f}L staged {staged / live:.2f}L "
          f"rest {rest / live:.2f}L; large inputs around it: {'; '.join(big) or 'none'}")
