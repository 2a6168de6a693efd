#!/usr/bin/env python3
"""System calls per GET in steady state: wrk holds its connections for the whole run; strace -c -f
attaches to every process of the server after the connections are up and detaches before wrk
closes them, so accepts and closes stay out of the window. Requests in the window are counted
as the server's write/writev/sendmsg calls (one per answer under a closed-loop load; strace -c
counts calls, and a second short trace of write calls gives the bytes per write).

    steady.py --out DIR --kingx BIN [--conns 100,1000] [--wrk-s 10] [--attach-after 3] [--window 3]
"""
import argparse, os, re, signal, subprocess, sys, tempfile, time, shutil, json

BENCH = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, BENCH)
from harness import kingx, peers, procs, scenarios, servers, sysinfo  # noqa: E402


def counts(path):
    calls = {}
    for line in open(path):
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
        if m and m.group(2) != "total":
            calls[m.group(2)] = int(m.group(1))
    return calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--kingx", required=True)
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--wrk-s", type=int, default=10)
    ap.add_argument("--attach-after", type=float, default=3)
    ap.add_argument("--window", type=float, default=3)
    ap.add_argument("--template", default="/tmp/getcpu-templates/tpl1000000/template-data")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    sysinfo.raise_fd_limit()
    work = tempfile.mkdtemp(prefix="get20-steady-")
    os.chmod(work, 0o755)
    ds = scenarios.Dataset(1000000, 0, 0)
    scen = scenarios.BY_NAME["get100"]
    res = []
    insts = []
    try:
        data = kingx.copy_data(a.template, os.path.join(work, "k", "data"))
        port = procs.free_port()
        p = procs.Proc("kingx", [a.kingx, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "1",
                                 "--model", "event", "--sync", "always", "--access-log", "off",
                                 "--max-connections", "19000"], os.path.join(work, "k.log"))
        procs.wait_http_ok(port, "/readyz", 300, p)
        insts.append(("kingx", p, port, servers.BY_NAME["kingx-ev1"]))
        p, port = peers.start_nginx(os.path.join(work, "nginx"), 1)
        insts.append(("nginx", p, port, servers.BY_NAME["nginx-return-w1"]))
        for c in [int(x) for x in a.conns.split(",")]:
            for name, p, port, spec in insts:
                for mode in ("count", "bytes"):
                    wrk = subprocess.Popen(scenarios.wrk_argv(spec, scen, port, c, a.wrk_s, ds),
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                    time.sleep(a.attach_after)
                    txt = os.path.join(a.out, f"{name}-c{c}-{mode}.txt")
                    argv = ["strace", "-f", "-o", txt]
                    argv += ["-c"] if mode == "count" else ["-e", "trace=write,writev,sendmsg,sendto", "-e", "abbrev=all", "-s", "0"]
                    for q in sysinfo.process_tree([p.pid]):
                        argv += ["-p", str(q)]
                    tr = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(a.window if mode == "count" else 0.5)
                    tr.send_signal(signal.SIGINT)
                    tr.wait(timeout=120)
                    wrk.communicate(timeout=a.wrk_s + 120)
                    if mode == "count":
                        calls = counts(txt)
                        n = sum(calls.get(k, 0) for k in ("write", "writev", "sendmsg", "sendto"))
                        rec = {"server": name, "conns": c, "answers": n,
                               "per_answer": {k: round(v / max(n, 1), 4) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])},
                               "load1": open("/proc/loadavg").read().split()[0]}
                    else:
                        sizes = [int(m.group(1)) for m in (re.search(r"= (\d+)$", l.strip()) for l in open(txt)) if m]
                        rec = {"server": name, "conns": c, "writes_traced": len(sizes),
                               "bytes_per_write_mean": round(sum(sizes) / max(len(sizes), 1), 1),
                               "bytes_per_write_min": min(sizes) if sizes else None,
                               "bytes_per_write_max": max(sizes) if sizes else None}
                    res.append(rec)
                    print(json.dumps(rec), flush=True)
    finally:
        for name, p, *_ in insts:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(a.out, "steady.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
