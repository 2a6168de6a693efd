import json,statistics as st,sys
r=json.load(open(sys.argv[1]))
rows=r['rows']
print(r['command'])
for c in sorted({x["conns"] for x in rows}):
  print('conns',c)
  by={}
  for x in rows:
    if x['conns']!=c: continue
    by.setdefault(x['round'],{})[x['bin']]=x
  rds=[rd for rd in sorted(by) if 'main' in by[rd] and 'branch' in by[rd]]
  for k in ['rps','cpu_us_per_req_kingx-worker','cpu_us_per_req_kingx-writer','ops_per_batch']:
    ratios=[by[rd]['branch'][k]/by[rd]['main'][k] for rd in rds]
    m=[by[rd]['main'][k] for rd in rds]; b=[by[rd]['branch'][k] for rd in rds]
    print(' ',k,'main',m,'branch',b,'ratios',[round(x,2) for x in ratios],'median',round(st.median(ratios),2))
  tot=[(by[rd]['branch']['cpu_us_per_req_kingx-worker']+by[rd]['branch']['cpu_us_per_req_kingx-writer'])/(by[rd]['main']['cpu_us_per_req_kingx-worker']+by[rd]['main']['cpu_us_per_req_kingx-writer']) for rd in rds]
  print('  server cpu per req ratio',[round(x,2) for x in tot],'median',round(st.median(tot),2))
