import re,sys
def load(path, n):
    d={}
    for line in open(path):
        m=re.match(r'\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$', line)
        if not m or 'PROGRAM TOTALS' in line: continue
        fn=re.sub(r'\s*\[/.*\]$','',m.group(2).strip())
        d[fn]=d.get(fn,0)+int(m.group(1).replace(',',''))/n
    return d
a=load(sys.argv[1], float(sys.argv[2])); b=load(sys.argv[3], float(sys.argv[4]))
print(f"total {sum(a.values()):.0f} {sum(b.values()):.0f}")
rows=sorted(set(a)|set(b), key=lambda k: -abs(b.get(k,0)-a.get(k,0)))
for k in rows[:int(sys.argv[5]) if len(sys.argv)>5 else 30]:
    print(f"{a.get(k,0):8.1f} {b.get(k,0):8.1f} {b.get(k,0)-a.get(k,0):+8.1f}  {k[:130]}")
