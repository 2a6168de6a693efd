#!/usr/bin/env python3
"""Counts what a garbage flood of N connections costs one kingx worker: /metrics counters over a wrk window
(connections opened, parked, refused), server CPU per request. floodcount.py BIN MODEL N"""
import os, re, subprocess, sys, tempfile, time, urllib.request
sys.path.insert(0, "/work/wt/abuse/bench")
import abuse
binary, model, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
abuse.BIG = os.urandom(1 << 20)
def metrics(port):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60).read().decode()
    out = {}
    for name in ("kingx_http_connections_opened_total", "kingx_http_flood_parked_total", "kingx_http_flood_parked",
                 "kingx_http_protocol_errors_total", "kingx_http_linger_cut_total"):
        m = re.search(r"^%s (\S+)$" % name, body, re.M)
        out[name.replace("kingx_http_", "")] = float(m.group(1)) if m else None
    return out
wd = tempfile.mkdtemp(prefix="floodcount-", dir="/tmp/abuse23")
with abuse.spawning_on([0]):
    s = abuse.kingx_server(binary, wd, 1, model, [])
try:
    import types
    a = types.SimpleNamespace(settle=4, duration=6, steady=0, abuse_conns=3000, flood_conns=n, workers=1)
    with abuse.spawning_on([1]):
        procs = abuse.start_abuse("garbage", s, a, wd)
    time.sleep(4)
    m0 = metrics(s.port); c0 = abuse.server_cpu_s(s); t0 = time.monotonic()
    wrk = abuse.start_wrk(s.url(s.small), 50, 6, [0])
    rps, p99, errors, requests = abuse.finish_wrk(wrk, 6)
    m1 = metrics(s.port); c1 = abuse.server_cpu_s(s); dt = time.monotonic() - t0
    d = {k: (m1[k] - m0[k]) if m1[k] is not None and m0[k] is not None else None for k in m0}
    print(f"{os.path.basename(os.path.dirname(binary)) or binary} {model} flood {n}: start {m0}\n  over {dt:.1f}s: {d}; parked now {m1['flood_parked']}; "
          f"{rps:.0f} req/s, {abuse.per_request_us(c1 - c0, requests)} us/req; load {os.getloadavg()[0]:.1f}")
    for p in procs: p.stop(abuse.signal.SIGINT, timeout_s=10)
finally:
    s.stop()
