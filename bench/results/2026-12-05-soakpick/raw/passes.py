import re, sys, collections
# Summarises the compaction debug lines: per pick reason, inputs copied with little to free.
pat = re.compile(r"compaction: (catch-up |dead-only )?pass \(([^)]*)\): sealed live (\d+) dead (\d+); inputs (.*); wrote (\d+), deleted (\d+), largest output beside its inputs (\d+)")
inp = re.compile(r"(\d+) \(([a-z-]+): live (\d+) dead (\d+)(?: reclaimable (\d+))?\)")
stats = collections.Counter(); heavy = []
for path in sys.argv[1:]:
    for line in open(path, errors="replace"):
        m = pat.search(line)
        if not m: continue
        kind, cause, slive, sdead, ins, wrote, deleted, largest = m.groups()
        for im in inp.finditer(ins):
            sid, why, live, dead, recl = im.groups()
            live, dead = int(live), int(dead); recl = int(recl) if recl else dead
            stats[(kind or "normal ", why)] += 1
            if live >= 1 << 20 and recl < live // 4:
                heavy.append((line[:19], (kind or "normal ").strip(), cause, why, sid, live, recl, int(largest)))
for k, v in sorted(stats.items()): print(k, v)
print("copy-heavy inputs (live >= 1 MiB, reclaimable < live/4):", len(heavy))
byw = collections.Counter((h[1], h[3]) for h in heavy); print(byw)
for h in heavy[:15]: print(h)
