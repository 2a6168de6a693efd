"""put_pairs_ratios.py TSV NEW BASE...: per round NEW / BASE of req/s and CPU per PUT from bench/put_pairs.sh lines, with medians, and the writes per group commit of both."""
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
new, bases = sys.argv[2], sys.argv[3:]
by = {}
for r in rows:
    by.setdefault(r[0], {})[r[1]] = r
for b in bases:
    rr, cr, wr = [], [], []
    for rnd, d in sorted(by.items(), key=lambda x: int(x[0])):
        if new in d and b in d:
            rr.append(float(d[new][2]) / float(d[b][2]))
            cr.append(float(d[new][3]) / float(d[b][3]))
            wr.append((float(d[new][4]), float(d[b][4])))
    if not rr:
        continue
    print(f"{new} / {b}: rounds {len(rr)}; req/s " + " ".join(f"{x:.2f}" for x in rr) +
          f" median {statistics.median(rr):.2f}; CPU per PUT " + " ".join(f"{x:.2f}" for x in cr) +
          f" median {statistics.median(cr):.2f}; writes per group commit (new, base) " +
          " ".join(f"{a:.0f}/{c:.0f}" for a, c in wr))
