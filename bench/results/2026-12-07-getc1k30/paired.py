"""Paired CPU per GET of raw/m3-et-ref-timed/summary.txt (bench/get_conns_profile.sh lines): et ÷ ref by
round and connection count, and their medians. Usage: python3 paired.py raw/m3-et-ref-timed/summary.txt"""
import re
import statistics
import sys

d = {}
for line in open(sys.argv[1]):
    p = line.split()
    m = re.match(r"(ref|et)-r(\d+)-c(\d+)$", p[0])
    if m:
        d[(m.group(1), int(m.group(2)), int(m.group(3)))] = float(p[p.index("cpu_us/get") + 1])
for c in sorted({k[2] for k in d}):
    rounds = sorted(r for (b, r, cc) in d if b == "et" and cc == c and ("ref", r, c) in d)
    ratios = [d[("et", r, c)] / d[("ref", r, c)] for r in rounds]
    print(f"c={c}: et ÷ ref CPU µs per GET by round {' '.join(f'{x:.3f}' for x in ratios)}; "
          f"median {statistics.median(ratios):.3f}; ref {' '.join(str(d[('ref', r, c)]) for r in rounds)}; "
          f"et {' '.join(str(d[('et', r, c)]) for r in rounds)}")
