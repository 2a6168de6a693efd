import json, sys
for path in sys.argv[1:]:
  d=json.load(open(path))
  print('==', path, d['uptime_start'][:40])
  for c in d['cases']:
    print(c['case'], 'requests', c['requests'], 'loadgen', c.get('loadgen_requests'))
    for p,v in c['per_request_by_process'].items():
      print('  %-22s'%p, ' '.join('%s=%.1f'%(k,v[k]) for k in ('Ir','Dr','Dw','I1mr','D1mr','D1mw','DLmr','DLmw') if k in v))
      mb=v.get('misses_by_function',{})
      for f,m in sorted(mb.items(), key=lambda x:-x[1]['D1mr'])[:int(sys.argv[0] and 14)]:
        if m['D1mr']>=0.1: print('     D1mr %6.2f DLmr %6.2f Ir %8.1f %s'%(m['D1mr'],m['DLmr'],m['Ir'],f[:100]))
