#!/usr/bin/env python3
"""Paired interleaved rounds: server CPU per request (user + system of the server's process tree ÷
requests wrk completed) and req/s for a GET of a 100-byte value, kingx binaries side by side, one
worker on CPU 0, wrk -t1 on CPU 1: `close` = every request on a new connection (Connection: close),
`keepalive` = wrk's usual keep-alive connections. MODEL=threads (environment): the thread model.

  bench/abuse_close_pairs.py SECONDS ROUNDS CONNS name=BIN [name=BIN ...] > close.json
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # bench/
import abuse  # noqa: E402

MODEL = os.environ.get("MODEL", "event")  # the serving model of every server (event or threads)


def wrk(url, conns, seconds, close):
    argv = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{seconds}s"]
    if close:
        argv += ["-H", "Connection: close"]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + 120).stdout
    m = re.search(r"(\d+) requests in", out)
    e = re.search(r"Socket errors: (.*)", out)
    return int(m.group(1)) if m else 0, (e.group(1) if e else "")


def main():
    seconds, rounds, conns = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    servers = [tuple(a.split("=", 1)) for a in sys.argv[4:]]
    abuse.BIG = random.Random(1).randbytes(1 << 20)
    rng = random.Random(rounds * 1000 + seconds)
    rows = []
    for rnd in range(1, rounds + 1):
        for mode in ("close", "keepalive"):
            order = list(servers)
            rng.shuffle(order)
            for name, binary in order:
                workdir = tempfile.mkdtemp(prefix=f"kingx-close-{name}-")
                try:
                    with abuse.spawning_on({0}):
                        server = abuse.kingx_server(binary, workdir, 1, MODEL, [], name=name)
                    try:
                        url = server.url(server.small)
                        wrk(url, conns, 1, mode == "close")  # warm-up
                        load = os.getloadavg()[0]
                        c0 = abuse.server_cpu_s(server)
                        n, errors = wrk(url, conns, seconds, mode == "close")
                        c1 = abuse.server_cpu_s(server)
                    finally:
                        server.stop()
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
                row = {"round": rnd, "mode": mode, "server": name, "requests": n, "rps": round(n / seconds),
                       "server_cpu_s": round(c1 - c0, 3), "us_per_req": round((c1 - c0) * 1e6 / n, 2) if n else None,
                       "socket_errors": errors, "load_before": load, "load_after": os.getloadavg()[0]}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    json.dump(rows, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
