#!/usr/bin/env python3
"""CPU per GET of servers measured at the same time: every server gets its own wrk (same
command as bench/compare's get100 cell) and all the loads run together, so both sides of a ratio
see the same machine (other work, frequency, the other server's cache pressure) in every round.
Per round: each server's process tree's schedstat run time ÷ its wrk's requests; ratios within
the round; medians over rounds. Servers: kingx binaries (1 event worker, 1M keys copied from a
template) and nginx `return 200` (1 worker).

    conc.py --out DIR --server NAME=kingx:BIN --server NAME=nginx [--rounds 10] [--duration 3]
            [--conns 100,1000] [--template DIR] [--pair A-B ...]
"""
import argparse, json, os, random, re, statistics, subprocess, sys, tempfile, time, shutil

BENCH = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, BENCH)
from harness import kingx, peers, procs, scenarios, servers, sysinfo  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--server", action="append", required=True)
    ap.add_argument("--pair", action="append", default=[])
    ap.add_argument("--template", default="/tmp/getcpu-templates/tpl1000000/template-data")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    sysinfo.raise_fd_limit()
    work = tempfile.mkdtemp(prefix="get20-conc-")
    os.chmod(work, 0o755)
    ds = scenarios.Dataset(1000000, 0, 0)
    scen = scenarios.BY_NAME["get100"]
    insts = []
    log = open(os.path.join(a.out, "runs.jsonl"), "a")
    try:
        for s in a.server:
            name, rest = s.split("=", 1)
            kind, _, binp = rest.partition(":")
            d = os.path.join(work, name)
            os.makedirs(d)
            if kind == "kingx":
                data = kingx.copy_data(a.template, os.path.join(d, "data"))
                port = procs.free_port()
                p = procs.Proc("kingx", [binp, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "1",
                                         "--model", "event", "--sync", "always", "--access-log", "off",
                                         "--max-connections", "19000"], os.path.join(d, "kingx.log"))
                procs.wait_http_ok(port, "/readyz", 300, p)
                spec = servers.BY_NAME["kingx-ev1"]
            else:
                p, port = peers.start_nginx(d, 1)
                spec = servers.BY_NAME["nginx-return-w1"]
            insts.append((name, p, port, spec))
        for name, p, port, spec in insts:  # warm: page cache, index pages
            subprocess.run(scenarios.wrk_argv(spec, scen, port, 100, 2, ds), capture_output=True, timeout=60)
        for r in range(a.rounds):
            for c in [int(x) for x in a.conns.split(",")]:
                load = open("/proc/loadavg").read().split()[0]
                snaps0 = {n: sysinfo.tree_run_ns([p.pid]) for n, p, _, _ in insts}
                ws = {n: subprocess.Popen(scenarios.wrk_argv(spec, scen, port, c, a.duration, ds),
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                      for n, p, port, spec in insts}
                outs = {n: w.communicate(timeout=a.duration + 120)[0] for n, w in ws.items()}
                snaps1 = {n: sysinfo.tree_run_ns([p.pid]) for n, p, _, _ in insts}
                rec = {"round": r, "conns": c, "load1": load, "servers": {}}
                for n, *_ in insts:
                    m = re.search(r"(\d+) requests in", outs[n])
                    req = int(m.group(1)) if m else 0
                    run_s = sysinfo.run_delta_s(snaps0[n], snaps1[n])
                    rec["servers"][n] = {"requests": req, "run_s": round(run_s, 6),
                                         "us_per_req": round(run_s * 1e6 / max(req, 1), 3)}
                log.write(json.dumps(rec) + "\n"); log.flush()
                print(f"r{r} c{c} load {load} " + " ".join(f"{n} {v['us_per_req']:.2f}us ({v['requests']})"
                                                          for n, v in rec["servers"].items()), flush=True)
    finally:
        for name, p, *_ in insts:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
