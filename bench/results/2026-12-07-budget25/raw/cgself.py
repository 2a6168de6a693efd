"""Self Ir per function of a callgrind out file (positions: line; events: Ir)."""
import re, sys, collections
def parse(path):
    names = {}
    self_cost = collections.Counter()
    fn = None
    skip_next = False
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("fn="):
            m = re.match(r"fn=\((\d+)\)(?: (.*))?", line)
            if m:
                if m.group(2): names[m.group(1)] = m.group(2)
                fn = names.get(m.group(1), m.group(1))
            else:
                fn = line[3:]
            continue
        if line.startswith("calls="):
            skip_next = True
            continue
        if line and (line[0].isdigit() or line[0] in "+-*"):
            if skip_next:
                skip_next = False
                continue
            parts = line.split()
            if len(parts) >= 2 and fn is not None:
                self_cost[fn] += int(parts[1])
            continue
        # cfn=, cfi=, ob=, fl=, fi=, fe= ... name compression for cfn too
        m = re.match(r"c?fn=\((\d+)\) (.*)", line)
        if m: names[m.group(1)] = m.group(2)
    return self_cost
a = parse(sys.argv[1]); na = float(sys.argv[2])
b = parse(sys.argv[3]) if len(sys.argv) > 3 else None; nb = float(sys.argv[4]) if b else 1
keys = set(a) | set(b or {})
rows = []
for k in keys:
    x = a.get(k, 0) / na
    y = (b.get(k, 0) / nb) if b else 0
    rows.append((y - x if b else x, x, y, k))
rows.sort(key=lambda r: -abs(r[0]))
for d, x, y, k in rows[:45]:
    print(f"{x:9.1f} {y:9.1f} {d:+8.1f}  {k[:150]}")
