#!/usr/bin/env python3
"""Prints threadcount.py's JSON as one table: per server and connections, per thread."""
import json
import sys

for path in sys.argv[1:]:
    for x in json.load(open(path)):
        print(f"{x['label']} c={x['conns']} round {x['round']}: {x['rps']} req/s, {x['puts']} PUTs, "
              f"ops/batch {x['ops_per_batch']}  ({x['uptime'].split('load average: ')[1]})")
        for k, v in sorted(x["threads"].items(), key=lambda kv: -kv[1]["cpu_us_per_put"]):
            if v["cpu_us_per_put"] < 0.05 and v["syscalls_per_put"] < 0.005:
                continue
            names = " ".join(f"{n}={c}" for n, c in sorted(v["by_name"].items(), key=lambda kv: -kv[1]) if c >= 0.002)
            print(f"  {k.split(':')[0]:<14} cpu {v['cpu_us_per_put']:6.2f} us (kernel {v['kernel_us_per_put']:5.2f})"
                  f"  sys {v['syscalls_per_put']:.3f}  cs {v['cswitch_per_put']:.3f}  {names}")
