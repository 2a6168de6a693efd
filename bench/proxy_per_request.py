#!/usr/bin/env python3
"""A connection per request through a proxy: nginx (one worker, `proxy_pass` with its default
`proxy_http_version 1.0` and no upstream keep-alive, so every request opens a new connection to
kingx) in front of kingx binaries side by side, in paired interleaved rounds (a shuffled order per
round). wrk -t1 -c16 keeps its connections to nginx; kingx sees one connection per request.

Per round and binary: req/s and p99 through the proxy, and kingx's CPU per request (user + system
of its process tree ÷ requests wrk completed). With --flood, a closed-loop garbage flood
(bench/abuse_clients.py garbage, 64 connections) runs against kingx directly during the
measurement: what a connection-per-request client meets while kingx meters a flood.

  bench/proxy_per_request.py --seconds 8 --rounds 3 new=build-release/src/kingx ref=/work/ref/s19/kingx
  bench/proxy_per_request.py --flood --seconds 8 --rounds 3 new=... ref=...

Prints one JSON object per round and binary, then a summary of the ratios to the first binary.
Every process started here is stopped by its PID.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import abuse  # noqa: E402
from harness import peers, procs  # noqa: E402


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def one(name, binary, seconds, flood, root):
    work = tempfile.mkdtemp(prefix=f"{name}-", dir=root)
    k = abuse.kingx_server(binary, os.path.join(work, "kingx"), 1, "event", [], name=name)
    n = None
    fl = None
    try:
        p, nport = peers.start_nginx(os.path.join(work, "nginx"), 1,
                                     extra_locations=f"location /px/ {{ proxy_pass http://127.0.0.1:{k.port}/; }}")
        n = p
        url = f"http://127.0.0.1:{nport}/px/v1/kv/small"
        abuse.run_wrk(url, 16, 1)  # warm-up: the path works
        if flood:
            fl = subprocess.Popen([sys.executable, os.path.join(HERE, "abuse_clients.py"), "garbage", "--port",
                                   str(k.port), "--conns", "64", "--seconds", str(seconds + 30)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(2)  # the flood is on (its connections end in 400s) before the measurement
        opened0 = procs_metric(k.port, "kingx_http_connections_opened_total")
        cpu0 = abuse.server_cpu_s(k)
        rps, p99, errors, requests = abuse.run_wrk(url, 16, seconds)
        cpu = abuse.server_cpu_s(k) - cpu0
        opened = procs_metric(k.port, "kingx_http_connections_opened_total") - opened0
        return {"name": name, "rps": rps, "p99_ms": p99, "errors": errors, "requests": requests,
                "kingx_cpu_us_per_req": round(cpu * 1e6 / requests, 2) if requests else None,
                "kingx_connections_opened": opened, "load": load(), "flood": flood}
    finally:
        if fl is not None:
            fl.terminate()
            try:
                fl.wait(timeout=60)
            except subprocess.TimeoutExpired:
                fl.kill()
        if n is not None:
            n.stop()
        k.stop()
        shutil.rmtree(work, ignore_errors=True)


def procs_metric(port, name):
    status, body = procs.http_request(port, "GET", "/metrics", timeout_s=60)
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--flood", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("binaries", nargs="+", help="name=path of a kingx binary")
    args = ap.parse_args()
    bins = [tuple(b.split("=", 1)) for b in args.binaries]
    rng = random.Random(args.seed)
    root = tempfile.mkdtemp(prefix="proxy-per-request-")
    rows = []
    try:
        for rnd in range(1, args.rounds + 1):
            order = bins[:]
            rng.shuffle(order)
            for name, binary in order:
                row = one(name, binary, args.seconds, args.flood, root)
                row["round"] = rnd
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    first = bins[0][0]
    for rnd in range(1, args.rounds + 1):
        base = next(r for r in rows if r["round"] == rnd and r["name"] == first)
        for r in rows:
            if r["round"] != rnd or r["name"] == first:
                continue
            print(f"round {rnd}: {first}/{r['name']} rps {base['rps'] / r['rps']:.3f} "
                  f"cpu/req {base['kingx_cpu_us_per_req'] / r['kingx_cpu_us_per_req']:.3f} "
                  f"p99 {base['p99_ms']} vs {r['p99_ms']} ms", flush=True)


if __name__ == "__main__":
    main()
