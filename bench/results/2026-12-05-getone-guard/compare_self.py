# Per-request self instructions of the worker, two bench/profile.py runs side by side:
#   python3 compare_self.py RUN_A RUN_B [ROWS]  (columns: A, B, B - A, function)
import re,sys,json
def load(r):
    j=json.load(open(r+'/profile.json')); c=j['cases'][0]; n=c['requests']
    # The worker: the process whose profile has the event loop's read callback
    # (at 1M keys the writer's key-view merge can count more per request).
    procs=c['per_request_by_process']
    workers=[k for k in procs if 'OnRead' in open(f'{r}/{k}.self.txt').read()]
    pid=workers[0] if workers else max(procs, key=lambda k:procs[k]['Ir'])
    d={}
    for line in open(f'{r}/{pid}.self.txt'):
        m=re.match(r'\s*([\d,]+) ', line)
        if not m or '???' not in line and '.S:' not in line and '.c:' not in line and '.h:' not in line: continue
        ir=int(m.group(1).replace(',',''))
        name=re.sub(r'^.*?\s(\S*:)', r'\1', line[line.index('DLmw') if 'DLmw' in line else 0:]).strip()
        name=re.search(r'(\S+:.*) \[', line)
        if not name: continue
        name=name.group(1)
        d[name]=d.get(name,0)+ir/n
    return d
a=load(sys.argv[1]); b=load(sys.argv[2])
rows=sorted(set(a)|set(b),key=lambda k:-abs(b.get(k,0)-a.get(k,0)))
for k in rows[:int(sys.argv[3]) if len(sys.argv)>3 else 25]:
    print(f"{a.get(k,0):8.1f} {b.get(k,0):8.1f} {b.get(k,0)-a.get(k,0):+8.1f}  {k[:140]}")
print(round(sum(a.values()),1), round(sum(b.values()),1))
