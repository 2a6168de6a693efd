#!/usr/bin/env python3
# Per-function change of a worker's instructions, I1 and D1 read misses per GET between two callgrind self
# profiles (bench/profile.py *.self.txt):  fn_delta.py A.self.txt REQUESTS_A B.self.txt REQUESTS_B
import re, sys
def load(path, n):
    d={}
    for line in open(path):
        parts=line.split()
        if not parts or not re.match(r'^[\d,]+$', parts[0]) or 'PROGRAM' in line: continue
        head=re.split(r'\s(?=\?\?\?:|\./|/)', line.strip(), maxsplit=1)
        nums=re.findall(r'([\d,]+|\.)(?:\s+\(\s*[\d.]+%\))?', head[0])
        name=re.sub(r'\s*\[[^\]]*\]$','',head[1]) if len(head)>1 else '?'
        vals=[0 if x=='.' else int(x.replace(',','')) for x in nums[:9]]
        d[name]=[v/n for v in vals]
    return d
a=load(sys.argv[1], float(sys.argv[2])); b=load(sys.argv[3], float(sys.argv[4]))
tot=[sum(v[i] for v in a.values()) for i in range(9)], [sum(v[i] for v in b.values()) for i in range(9)]
print("totals (listed fns) Ir %.0f -> %.0f, I1 %.1f -> %.1f, D1mr %.1f -> %.1f" % (tot[0][0],tot[1][0],tot[0][3],tot[1][3],tot[0][4],tot[1][4]))
keys=set(a)|set(b); z=[0]*9
rows=sorted(((b.get(k,z)[0]-a.get(k,z)[0], b.get(k,z)[3]-a.get(k,z)[3], b.get(k,z)[4]-a.get(k,z)[4], k) for k in keys))
for r in rows[:15]+rows[-20:]:
    print(f"{r[0]:8.1f} Ir {r[1]:7.1f} I1 {r[2]:6.1f} D1mr  {r[3][:100]}")
