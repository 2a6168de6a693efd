import sys
prev=None; n=0; over2=0; over2_nobehind=0; fit_nobehind=0
for line in open(sys.argv[1]):
    if 'DIAG' not in line: continue
    f=line.split('DIAG ',1)[1].split(); kind=f[1]; kv=dict(zip(f[2::2],f[3::2]))
    if kind=='forecast': prev=kv
    if kind=='kfit' and kv['fits']=='0':
        n+=1; R=int(kv['R']); a=int(kv['added']); ba=int(kv['begin_after']); beh=int(prev['behind']) if prev and prev['ops']==kv['of'] else 0
        if R+a>2*ba: over2+=1
        if R+a-beh>2*ba: over2_nobehind+=1
        if R+a-beh<=ba: fit_nobehind+=1
print('kfit not fitting',n,'over 2L (with behind)',over2,'over 2L without behind',over2_nobehind,'would fit without behind',fit_nobehind)
