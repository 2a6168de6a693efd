"""Counts, per pass kind and pick rule, the inputs of the compaction passes'
debug lines that held more than a quarter of the sealed live bytes the pass
saw (a large copy: it stands beside its input until the input is deleted),
what they copied, the largest of them as a share of those sealed live bytes,
and the inputs a pass left when their turn came because their copy did not
fit ("left: its copy does not fit"; picked, not copied).
Usage: large_copies.py LOG..."""
import collections
import re
import sys

PASS = re.compile(r"compaction: (catch-up |dead-only )?pass \(([^)]*)\): sealed live (\d+) dead (\d+); inputs (.*); "
                  r"wrote (\d+), deleted (\d+), largest output beside its inputs (\d+)")
INPUT = re.compile(r"(\d+) \(([a-z-]+): live (\d+) dead (\d+)(?: reclaimable (\d+))?( left: its copy does not fit)?\)")

for path in sys.argv[1:]:
    large = collections.defaultdict(lambda: [0, 0, 0.0])  # (kind, why) -> inputs, live copied, largest share
    left = collections.Counter()
    for line in open(path, errors="replace"):
        m = PASS.search(line)
        if not m:
            continue
        kind = (m.group(1) or "normal ").strip()
        sealed_live = int(m.group(3))
        for im in INPUT.finditer(m.group(5)):
            _sid, why, live, _dead, _recl, was_left = im.groups()
            live = int(live)
            if was_left:
                left[(kind, why)] += 1
                continue
            if sealed_live and live * 4 > sealed_live:
                e = large[(kind, why)]
                e[0] += 1
                e[1] += live
                e[2] = max(e[2], live / sealed_live)
    print(f"== {path}")
    for (kind, why), (n, live, share) in sorted(large.items()):
        print(f"  {kind:9} {why:13} large copies {n:5}  live copied {live:12}  largest share of the sealed live {share:.2f}")
    for (kind, why), n in sorted(left.items()):
        print(f"  {kind:9} {why:13} left when their turn came: {n}")
