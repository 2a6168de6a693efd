#!/usr/bin/env python3
"""Fast readers of a large value, the case the write burst exists for: wrk GET of a 1 MiB value
(8 connections, one thread) for each kingx binary, in interleaved rounds, the server pinned to
CPU 0 and wrk to CPU 1. Reports req/s and the server tree's CPU per request.
Usage: bigget.py ROUNDS SECONDS NAME=BIN... > OUT.json"""
import json
import os
import random
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
import abuse  # noqa: E402

rounds, seconds = int(sys.argv[1]), int(sys.argv[2])
bins = [tuple(a.split("=", 1)) for a in sys.argv[3:]]
abuse.BIG = random.Random(1).randbytes(1 << 20)
rows = []
rng = random.Random(7)
for rnd in range(1, rounds + 1):
    order = list(bins)
    rng.shuffle(order)
    for name, binary in order:
        wd = tempfile.mkdtemp(prefix="kingx-bigget-")
        try:
            with abuse.spawning_on({0}):
                server = abuse.kingx_server(binary, wd, 1, "event", [], name=name)
            try:
                cpu0 = abuse.server_cpu_s(server)
                rps, p99, errors, requests = abuse.run_wrk(server.url(server.big), 8, seconds, cpus={1})
                cpu1 = abuse.server_cpu_s(server)
            finally:
                server.stop()
        finally:
            shutil.rmtree(wd, ignore_errors=True)
        row = {"round": rnd, "server": name, "rps": rps, "p99_ms": p99, "errors": errors, "requests": requests,
               "server_cpu_us_per_req": round((cpu1 - cpu0) * 1e6 / requests, 1) if requests else None,
               "loadavg": os.getloadavg()[0]}
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
print(json.dumps({"argv": sys.argv, "rows": rows}, indent=1))
