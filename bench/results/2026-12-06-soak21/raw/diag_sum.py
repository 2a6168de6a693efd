import re,sys,collections
log=sys.argv[1]
np=collections.Counter(); kfit=collections.Counter(); ends=collections.Counter()
stale_fast=0; nps=[]
for line in open(log):
    if 'DIAG' not in line: continue
    f=line.split('DIAG ',1)[1].split()
    kind=f[1]
    kv=dict(zip(f[2::2],f[3::2])) if kind!='end' else {}
    if kind=='noprogress':
        st=int(kv['stale']); R=int(kv['R']); end=int(kv['end'])
        np[(st, R>end)]+=1
        nps.append((st,int(kv['after_us']),R,int(kv['target']),end,int(kv['live']),int(kv['queued'])))
    elif kind=='kfit':
        kfit[int(kv['fits'])]+=1
    elif kind=='end':
        ends[' '.join(f[2:])]+=1
print('ends',dict(ends))
print('noprogress (stale, R>end):',dict(np))
print('kfit fits:',dict(kfit))
import statistics
for st in (0,1):
    xs=[n[1] for n in nps if n[0]==st]
    if xs: print('stale',st,'n',len(xs),'median us',statistics.median(xs),'<2ms',sum(1 for x in xs if x<2000))
# target zero share
tz=[n for n in nps if n[3]==0]
print('noprogress with target 0:',len(tz),'of',len(nps))
