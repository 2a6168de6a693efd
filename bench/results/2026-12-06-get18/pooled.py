"""Pools the paired rounds of compare1..3: per round, server CPU per GET of A / B
(the CPU/req pairs paired.py prints), then the median over all rounds per cell.
python3 pooled.py compare1/paired.txt compare2/paired.txt compare3/paired.txt"""
import re, statistics, sys
cells = {}
for path in sys.argv[1:]:
    for line in open(path):
        m = re.match(r"(\S+) / (\S+) get100 c=(\d+):.*CPU/req (.*)\)$", line.strip())
        if not m:
            continue
        pairs = re.findall(r"([\d.]+)/([\d.]+)us", m.group(4))
        cells.setdefault((m.group(1), m.group(2), m.group(3)), []).extend(float(a) / float(b) for a, b in pairs)
for (a, b, c), r in sorted(cells.items()):
    below = sum(1 for x in r if x < 1)
    print(f"{a} / {b} c={c}: CPU per GET ratio median {statistics.median(r):.3f} over {len(r)} rounds "
          f"({below} below 1), i.e. GET per CPU-s ratio {1/statistics.median(r):.3f}")
