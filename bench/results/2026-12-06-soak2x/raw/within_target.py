"""Counts the catch-up passes' space-bound picks made while the sealed
segments' reclaimable bytes were already within a quarter of the sealed live
bytes (so within the write stall's end bound, a quarter of all the live data:
the stall's target was met before the pick), and what they copied and freed;
and how many of those inputs held more than a quarter of the sealed live data.
Usage: within_target.py LOG..."""
import re
import sys

PASS = re.compile(r"compaction: catch-up pass \(([^)]*)\): sealed live (\d+) dead (\d+); inputs (.*); "
                  r"wrote (\d+), deleted (\d+), largest output beside its inputs (\d+)")
INPUT = re.compile(r"(\d+) \(([a-z-]+): live (\d+) dead (\d+)(?: reclaimable (\d+))?\)")
for path in sys.argv[1:]:
    n = within = big = 0
    copied = freed = 0
    all_copied = all_freed = 0
    for line in open(path, errors="replace"):
        m = PASS.search(line)
        if not m:
            continue
        live, dead = int(m.group(2)), int(m.group(3))
        for im in INPUT.finditer(m.group(4)):
            _sid, why, ilive, idead, recl = im.groups()
            if why != "space-bound":
                continue
            ilive, recl = int(ilive), int(recl) if recl else int(idead)
            n += 1
            all_copied += ilive
            all_freed += recl
            if dead * 4 <= live:
                within += 1
                copied += ilive
                freed += recl
                big += ilive * 4 > live
    print(f"{path}: catch-up space-bound picks {n} (copied {all_copied}, freed {all_freed}); made with the sealed "
          f"reclaimable bytes within a quarter of the sealed live: {within} (copied {copied}, freed {freed}), "
          f"of which holding over a quarter of the sealed live: {big}")
