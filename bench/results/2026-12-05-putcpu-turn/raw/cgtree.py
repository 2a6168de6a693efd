#!/usr/bin/env python3
"""Per-PUT inclusive instructions of the callees of chosen functions, from a
`callgrind_annotate --tree=calling --inclusive=yes --threshold=100` listing.
    python3 cgtree.py TREE.txt PUTS PATTERN..."""
import re
import sys

path, n, pats = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for blk in open(path).read().split("\n\n"):
    lines = blk.strip().splitlines()
    star = [l for l in lines if re.match(r"\s*[\d,]+ \([\s\d.]+%\)\s+\*", l)]
    if not star or not any(re.search(p, star[0]) for p in pats):
        continue
    for l in lines:
        m = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.)\s+\?*:?(.*?)(\[/.*)?$", l)
        if m and int(m.group(1).replace(",", "")) / n >= 4:
            print(f"{int(m.group(1).replace(',', '')) / n:8.0f} {m.group(2)} {m.group(3)[:140]}")
    print()
