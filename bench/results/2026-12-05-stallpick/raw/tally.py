"""Tallies the compaction passes' debug lines of kingx error logs: per pass
kind and pick rule, inputs, their live bytes (what a pass copies of them) and
reclaimable bytes (what it frees), and what the catch-up passes wrote.
Usage: tally.py LOG..."""
import collections
import re
import sys

PASS = re.compile(r"compaction: (catch-up |dead-only )?pass \(([^)]*)\): sealed live (\d+) dead (\d+); inputs (.*); "
                  r"wrote (\d+), deleted (\d+), largest output beside its inputs (\d+)")
INPUT = re.compile(r"(\d+) \(([a-z-]+): live (\d+) dead (\d+)(?: reclaimable (\d+))?\)")
STALL = re.compile(r"write stall ended after (\d+) us: (.*)$")

for path in sys.argv[1:]:
    picks = collections.defaultdict(lambda: [0, 0, 0])  # (kind, why) -> inputs, live, reclaimable
    wrote = collections.Counter()
    passes = collections.Counter()
    largest = collections.Counter()
    heavy = collections.Counter()  # inputs with >= 1 MiB live and under a quarter of it reclaimable
    stalls = collections.defaultdict(lambda: [0, 0])
    for line in open(path, errors="replace"):
        m = PASS.search(line)
        if m:
            kind = (m.group(1) or "normal ").strip()
            passes[kind] += 1
            wrote[kind] += int(m.group(6))
            largest[kind] = max(largest[kind], int(m.group(8)))
            for im in INPUT.finditer(m.group(5)):
                _sid, why, live, dead, recl = im.groups()
                live, recl = int(live), int(recl) if recl else int(dead)
                p = picks[(kind, why)]
                p[0] += 1
                p[1] += live
                p[2] += recl
                if live >= 1 << 20 and recl < live // 4:
                    heavy[(kind, why)] += 1
            continue
        m = STALL.search(line)
        if m:
            s = stalls[m.group(2).strip()]
            s[0] += 1
            s[1] += int(m.group(1))
    print(f"== {path}")
    for kind in sorted(passes):
        print(f"{kind}: {passes[kind]} passes, wrote {wrote[kind]} B, largest output beside its inputs {largest[kind]} B")
    for (kind, why), (n, live, recl) in sorted(picks.items()):
        ratio = f"{live / recl:.2f}" if recl else "-"
        print(f"  {kind:9} {why:13} inputs {n:6}  live (copied) {live:13}  reclaimable (freed) {recl:13}  "
              f"copied per byte freed {ratio}  copy-heavy {heavy[(kind, why)]}")
    cu = [v for (k, _w), v in picks.items() if k == "catch-up"]
    live = sum(v[1] for v in cu)
    recl = sum(v[2] for v in cu)
    if recl:
        print(f"  catch-up inputs in all: live {live}, reclaimable {recl}, copied per byte freed {live / recl:.3f}; "
              f"written per byte freed {wrote['catch-up'] / recl:.3f}")
    for why, (n, us) in sorted(stalls.items()):
        print(f"  stalls ended '{why}': {n}, {us / 1e6:.2f} s in all")
