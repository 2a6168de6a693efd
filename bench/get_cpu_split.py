#!/usr/bin/env python3
"""User and system CPU per GET of several servers, at several connection counts, measured at the
same time (every server gets its own wrk, bench/compare's get100 command, and all the loads run
together, so both sides of a ratio see the same machine in every round). Per round and server:
the process tree's user and system CPU (utime, stime of /proc/PID/stat, clock ticks: a few
percent over a few seconds) and its scheduler run time (schedstat, exact) ÷ the requests its wrk
counted (a run with any non-2xx answer or error is reported as such). Shows where a server's CPU
per GET goes when the connections grow: user space (the server's own code) or the kernel.

    bench/get_cpu_split.py --out DIR --server NAME=kingx:BIN [--server NAME=nginx]
        [--server NAME=webdis] [--rounds 6] [--duration 3] [--conns 100,1000]
        [--template DIR]   (a kingx data directory with k0..k999999 of 100 B, e.g. bench/compare's)

Servers: kingx (1 event worker, --sync always, access log off: bench/compare's kingx-ev1), nginx
`return 200` (1 worker), webdis (1 thread) + redis holding the same 1M keys. Writes runs.jsonl
(one line per round and connection count) and prints one line each. Python standard library.
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import kingx, peers, procs, scenarios, servers, sysinfo  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def user_sys(root):
    """(user ticks, system ticks) summed over the process tree under root."""
    u = s = 0
    for pid in sysinfo.process_tree([root]):
        try:
            with open(f"/proc/{pid}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        u += int(rest[11])
        s += int(rest[12])
    return u, s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--server", action="append", required=True)
    ap.add_argument("--template", default="/tmp/getcpu-templates/tpl1000000/template-data")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    sysinfo.raise_fd_limit()
    work = tempfile.mkdtemp(prefix="get-split-")
    os.chmod(work, 0o755)
    ds = scenarios.Dataset(1000000, 0, 0)
    scen = scenarios.BY_NAME["get100"]
    insts, extra = [], []
    log = open(os.path.join(a.out, "runs.jsonl"), "a")
    try:
        for s in a.server:
            name, rest = s.split("=", 1)
            kind, _, binp = rest.partition(":")
            d = os.path.join(work, name)
            os.makedirs(d)
            roots = []
            if kind == "kingx":
                data = kingx.copy_data(a.template, os.path.join(d, "data"))
                port = procs.free_port()
                p = procs.Proc("kingx", [binp, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "1",
                                         "--model", "event", "--sync", "always", "--access-log", "off",
                                         "--max-connections", "19000"], os.path.join(d, "kingx.log"))
                procs.wait_http_ok(port, "/readyz", 300, p)
                spec = servers.BY_NAME["kingx-ev1"]
                roots = [("server", p)]
            elif kind == "nginx":
                p, port = peers.start_nginx(d, 1)
                spec = servers.BY_NAME["nginx-return-w1"]
                roots = [("server", p)]
            elif kind == "webdis":
                rp, rport = peers.start_redis(os.path.join(d, "redis"))
                extra.append(rp)
                peers.preload_redis(rport, ds)
                p, port = peers.start_webdis(os.path.join(d, "webdis"), rport)
                spec = servers.BY_NAME["webdis-redis"]
                roots = [("server", p), ("backend", rp)]
            else:
                raise SystemExit(f"unknown server kind {kind}")
            insts.append((name, p, port, spec, roots))
        for name, p, port, spec, _ in insts:  # warm: page cache, index pages
            subprocess.run(scenarios.wrk_argv(spec, scen, port, 100, 2, ds), capture_output=True, timeout=120)
        for r in range(a.rounds):
            for c in [int(x) for x in a.conns.split(",")]:
                load = open("/proc/loadavg").read().split()[0]
                t0 = {(n, k): user_sys(q.pid) for n, _, _, _, roots in insts for k, q in roots}
                ws = {n: subprocess.Popen(scenarios.wrk_argv(spec, scen, port, c, a.duration, ds),
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                      for n, p, port, spec, _ in insts}
                outs = {n: w.communicate(timeout=a.duration + 120)[0] for n, w in ws.items()}
                t1 = {(n, k): user_sys(q.pid) for n, _, _, _, roots in insts for k, q in roots}
                rec = {"round": r, "conns": c, "load1": load, "servers": {}}
                for n, _, _, _, roots in insts:
                    m = re.search(r"(\d+) requests in", outs[n])
                    req = int(m.group(1)) if m else 0
                    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", outs[n])
                    v = {"requests": req, "non2xx": int(bad.group(1)) if bad else 0}
                    for k, _ in roots:
                        du = t1[(n, k)][0] - t0[(n, k)][0]
                        dsy = t1[(n, k)][1] - t0[(n, k)][1]
                        v[f"{k}_user_us"] = round(du / HZ * 1e6 / max(req, 1), 3)
                        v[f"{k}_sys_us"] = round(dsy / HZ * 1e6 / max(req, 1), 3)
                    rec["servers"][n] = v
                log.write(json.dumps(rec) + "\n")
                log.flush()
                print(f"r{r} c{c} load {load} " + " ".join(
                    f"{n} " + "/".join(f"{v[k + '_user_us']:.2f}u+{v[k + '_sys_us']:.2f}s" for k, _ in roots)
                    + f" ({v['requests']}{', NON-2XX ' + str(v['non2xx']) if v['non2xx'] else ''})"
                    for n, _, _, _, roots in insts for v in [rec["servers"][n]]), flush=True)
    finally:
        for name, p, *_ in insts:
            p.stop()
        for p in extra:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
