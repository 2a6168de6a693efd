# Usage: cmp_pairs.py SUMMARY.json [ALTERNATE]  (ALTERNATE: the other kingx's server name, default kingx-ev1@main)
import json,statistics as st,sys
s=json.load(open(sys.argv[1]))
alt=sys.argv[2] if len(sys.argv)>2 else 'kingx-ev1@main'
R={}
for x in s['runs']:
    R[(x['scenario'],x['conns'],x['round'],x['server'])]=x
for sc in ('put100-always','put100-none'):
  for c in (100,1000):
    rds=sorted({k[2] for k in R if k[0]==sc and k[1]==c})
    def ratio(a,b,f):
        return [R[(sc,c,rd,a)][f]/R[(sc,c,rd,b)][f] for rd in rds]
    bm=ratio('kingx-ev1',alt,'rps'); cpu=ratio('kingx-ev1',alt,'cpu_us_per_req')
    bn=ratio('kingx-ev1','nginx-return-w1','rps'); mn=ratio(alt,'nginx-return-w1','rps')
    print(f"{sc} c={c}: branch/main req/s {[round(x,2) for x in bm]} med {st.median(bm):.2f}; cpu/req {[round(x,2) for x in cpu]} med {st.median(cpu):.2f}; branch/nginx {[round(x,2) for x in bn]} med {st.median(bn):.2f}; main/nginx {[round(x,2) for x in mn]} med {st.median(mn):.2f}")
for c in (100,1000):
  rds=sorted({k[2] for k in R if k[1]==c})
  for srv in ('kingx-ev1',alt):
    v=[R[('put100-always',c,rd,srv)]['rps']/R[('put100-none',c,rd,srv)]['rps'] for rd in rds]
    print(f"durable/none c={c} {srv}: {[round(x,2) for x in v]} med {st.median(v):.2f}")
