"""Per-function self instructions per request of two callgrind_annotate self listings, largest change first.
python3 cgdiff.py A.self.txt A_requests B.self.txt B_requests [rows]"""
import re,sys,json
def load(path, reqs):
    out={}
    for line in open(path):
        m=re.match(r'\s*([\d,]+) \(\s*[\d.]+%\)\s.*?(\S+:\S.*?)(?: \[.*\])?$', line)
        if not m: continue
        ir=int(m.group(1).replace(',',''))
        fn=line.split('???:')[-1] if '???:' in line else line.split()[-2] if False else line[line.rfind('  ')+2:].strip()
        fn=re.sub(r'\s*\[/.*\]$','',fn)
        out[fn]=out.get(fn,0)+ir/reqs
    return out
a=load(sys.argv[1], float(sys.argv[2])); b=load(sys.argv[3], float(sys.argv[4]))
keys=set(a)|set(b)
rows=sorted(keys,key=lambda k:-(abs(b.get(k,0)-a.get(k,0))))
print(f"{'A':>8} {'B':>8} {'B-A':>8}  function (Ir per request, self)")
for k in rows[:int(sys.argv[5]) if len(sys.argv)>5 else 30]:
    print(f"{a.get(k,0):8.1f} {b.get(k,0):8.1f} {b.get(k,0)-a.get(k,0):+8.1f}  {k[:150]}")
