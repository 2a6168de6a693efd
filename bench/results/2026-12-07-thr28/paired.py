"""Per-round ratios new ÷ ref of a bench/compare summary.json (kingx-thr150 vs kingx-thr150@ref):
server CPU (scheduler time) per request and req/s, median [min-max].
Usage: python3 paired.py SUMMARY.json"""
import json
import statistics
import sys

d = json.load(open(sys.argv[1]))
runs = {(r['scenario'], r['server'], r['round']): r for r in d['runs']}
rounds = sorted({r['round'] for r in d['runs']})
for sc in ('get100', 'put100-always'):
    cpu, rps = [], []
    for rd in rounds:
        a, b = runs.get((sc, 'kingx-thr150', rd)), runs.get((sc, 'kingx-thr150@ref', rd))
        if a and b:
            cpu.append(a['sched_us_per_req'] / b['sched_us_per_req'])
            rps.append(a['rps'] / b['rps'])
            print(f"{sc} round {rd}: new {a['sched_us_per_req']:.2f} us, ref {b['sched_us_per_req']:.2f} us per request")
    print(f"{sc} new/ref CPU per request {statistics.median(cpu):.2f} [{min(cpu):.2f}-{max(cpu):.2f}], "
          f"req/s {statistics.median(rps):.2f} [{min(rps):.2f}-{max(rps):.2f}]")
