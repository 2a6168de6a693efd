#!/usr/bin/env python3
"""Where a garbage flood's cost goes: one server (1 worker, CPU 0) under wrk -t1 -c50 (CPU 0), with and
without bench/abuse_clients.py garbage (64 conns, CPU 1). Per phase: wrk requests, server CPU
(user+sys of the tree), connections the worker opened (/metrics), then an optional tracing pass
(strace -c -f of the worker, or perf record) during an abused window.
  flood_prof.py NAME=BIN[:MODEL] ... --out DIR [--trace strace|perf|none] [--seconds 8]"""
import argparse, os, re, shutil, subprocess, sys, tempfile, time, types, json
sys.path.insert(0, "/work/wt/abuse/bench")
import abuse
from harness import procs

def metric(port, name):
    _, body = procs.http_request(port, "GET", "/metrics", timeout_s=30)
    m = re.search(r"^%s (\S+)$" % re.escape(name), body.decode(), re.M)
    return float(m.group(1)) if m else 0.0

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("servers", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--trace", default="none")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    abuse.BIG = os.urandom(1 << 20)
    scpu, acpu = abuse.parse_pin("0:1", set(os.sched_getaffinity(0)))
    args = types.SimpleNamespace(settle=3, duration=a.seconds, steady=0, abuse_conns=3000, workers=1)
    rows = []
    for rnd in range(a.rounds):
      for spec in a.servers:
        name, _, rest = spec.partition("=")
        binary, _, model = rest.partition(":")
        wd = tempfile.mkdtemp(prefix="fp-", dir="/tmp/abuse22")
        srv = None
        try:
            with abuse.spawning_on(scpu):
                srv = abuse.kingx_server(binary, wd, 1, model or "event", [], None, name)
            abuse.run_wrk(srv.url(srv.small), 50, 2, scpu)
            wpid = srv.worker_pids()[0]
            for abused in (False, True, False, True):
                procs_ = []
                if abused:
                    with abuse.spawning_on(acpu):
                        procs_ = abuse.start_abuse("garbage", srv, args, wd)
                    time.sleep(3)
                o0 = metric(srv.port, "kingx_http_connections_opened_total")
                c0 = abuse.server_cpu_s(srv)
                w = abuse.start_wrk(srv.url(srv.small), 50, a.seconds, scpu)
                tr = None
                if abused and a.trace == "strace" and not any(r.get("traced") for r in rows if r["server"] == name and r["round"] == rnd):
                    time.sleep(1)
                    tr = subprocess.Popen(["timeout", "-s", "INT", "4", "strace", "-c", "-f", "-p", str(wpid), "-o",
                                           f"{a.out}/strace-{name}-r{rnd}.txt"], stderr=subprocess.DEVNULL)
                if abused and a.trace == "perf" and not any(r.get("traced") for r in rows if r["server"] == name and r["round"] == rnd):
                    time.sleep(1)
                    tr = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-p", str(wpid), "-o",
                                           f"{a.out}/perf-{name}-r{rnd}.data", "--", "sleep", "5"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if not abused and a.trace == "perf" and not any(r.get("traced_alone") for r in rows if r["server"] == name and r["round"] == rnd):
                    time.sleep(1)
                    tr = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-p", str(wpid), "-o",
                                           f"{a.out}/perf-{name}-alone-r{rnd}.data", "--", "sleep", "5"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                rps, p99, err, req = abuse.finish_wrk(w, a.seconds)
                cpu = abuse.server_cpu_s(srv) - c0
                opened = metric(srv.port, "kingx_http_connections_opened_total") - o0
                if tr: tr.wait(timeout=60)
                for p in procs_:
                    p.stop(abuse.signal.SIGINT, timeout_s=10)
                row = dict(round=rnd, server=name, abused=abused, rps=rps, requests=req, cpu_s=round(cpu, 3),
                           us_per_req=round(cpu / req * 1e6, 2) if req else None, opened=opened,
                           opened_per_kreq=round(opened / req * 1000, 2) if req else None,
                           traced=bool(tr) and abused, traced_alone=bool(tr) and not abused,
                           load=os.getloadavg()[0])
                rows.append(row); print(json.dumps(row), flush=True)
                if abused:
                    dl = time.monotonic() + 60
                    while abuse.established(srv.port) > 60 and time.monotonic() < dl: time.sleep(0.2)
        finally:
            if srv: srv.stop()
            shutil.rmtree(wd, ignore_errors=True)
    json.dump(rows, open(f"{a.out}/rows.json", "w"), indent=1)

main()
