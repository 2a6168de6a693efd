import json, sys, statistics
d = json.load(open(sys.argv[1]))
runs = {(r['scenario'], r['server'], r['round']): r for r in d['runs']}
for sc in ('get100', 'put100-always'):
    for other in ('kingx-thr150@base', 'kingx-thr150@ref', 'kingx-ev1', 'nginx-return-w1'):
        cpu, rps = [], []
        for rd in (1, 2, 3):
            a, b = runs.get((sc, 'kingx-thr150', rd)), runs.get((sc, other, rd))
            if a and b:
                cpu.append(a['sched_us_per_req'] / b['sched_us_per_req'])
                rps.append(a['rps'] / b['rps'])
        print(f"{sc:14s} thr150 / {other:18s} sched CPU per req {statistics.median(cpu):.2f} [{min(cpu):.2f}-{max(cpu):.2f}]  req/s {statistics.median(rps):.2f} [{min(rps):.2f}-{max(rps):.2f}]")
