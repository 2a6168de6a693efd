import sys, collections, statistics
rows=[l.split('\t') for l in open(sys.argv[1]).read().split('\n') if l]
by=collections.defaultdict(dict)
for r in rows: by[r[0]][r[1]]=r
rr=[];cc=[];bb=[]
for k in sorted(by, key=int):
    n,p=by[k]['new'],by[k]['prev']
    rr.append(float(n[2])/float(p[2])); cc.append(float(n[3])/float(p[3])); bb.append(f"{n[4]}/{p[4]}")
print(sys.argv[1], 'req/s new/prev', [round(x,2) for x in rr], 'median', round(statistics.median(rr),2))
print('  cpu/PUT new/prev', [round(x,2) for x in cc], 'median', round(statistics.median(cc),2))
print('  ops/batch new/prev', bb)
