#!/usr/bin/env python3
"""Where one GET's CPU goes, kernel included: kingx (1 event worker, 1M keys) beside nginx
`return 200` (1 worker), under the same wrk load as bench/compare's get100 cell.
Per server and connection count, interleaved: `perf stat` (software events: task-clock,
context switches, migrations, page faults; this VM has no hardware counters) and
`perf record -e cpu-clock` of the serving process, plus schedstat run time and utime/stime
per request, written to OUT/.

    perfpair.py --out DIR --kingx BIN [--rounds 2] [--duration 4] [--conns 100,1000]
                [--template DIR] [--server NAME=kingx:BIN ...]
"""
import argparse, json, os, subprocess, sys, tempfile, time, shutil, re

BENCH = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, BENCH)
from harness import kingx, peers, procs, scenarios, servers, sysinfo  # noqa: E402


def worker_pid(root, comm):
    for pid in sysinfo.process_tree([root]):
        try:
            if open(f"/proc/{pid}/comm").read().strip() == comm:
                return pid
        except OSError:
            pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--server", action="append", default=[], help="NAME=BIN (kingx)")
    ap.add_argument("--template", default="/tmp/getcpu-templates/tpl1000000/template-data")
    ap.add_argument("--no-record", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    sysinfo.raise_fd_limit()
    work = tempfile.mkdtemp(prefix="get20-perfpair-")
    os.chmod(work, 0o755)
    insts = []
    log = open(os.path.join(a.out, "runs.jsonl"), "a")
    ds = scenarios.Dataset(1000000, 0, 0)
    try:
        for s in a.server:
            name, binp = s.split("=", 1)
            d = os.path.join(work, name)
            os.makedirs(d)
            data = kingx.copy_data(a.template, os.path.join(d, "data"))
            port = procs.free_port()
            argv = [binp, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "1",
                    "--model", "event", "--sync", "always", "--access-log", "off",
                    "--max-connections", "19000"]
            p = procs.Proc("kingx", argv, os.path.join(d, "kingx.log"))
            procs.wait_http_ok(port, "/readyz", 300, p)
            insts.append((name, p, port, servers.BY_NAME["kingx-ev1"], "kingx-worker"))
        p, port = peers.start_nginx(os.path.join(work, "nginx"), 1)
        insts.append(("nginx", p, port, servers.BY_NAME["nginx-return-w1"], "nginx"))
        scen = scenarios.BY_NAME["get100"]
        for name, p, port, spec, comm in insts:
            subprocess.run(scenarios.wrk_argv(spec, scen, port, 100, 2, ds), capture_output=True, timeout=60)
        for r in range(a.rounds):
            for c in [int(x) for x in a.conns.split(",")]:
                for name, p, port, spec, comm in insts:
                    wpid = worker_pid(p.pid, comm) if name != "nginx" else max(
                        q for q in sysinfo.process_tree([p.pid]) if q != p.pid)
                    tag = f"r{r}-c{c}-{name}"
                    stat_txt = os.path.join(a.out, tag + ".stat.txt")
                    pst = subprocess.Popen(["perf", "stat", "-e",
                                            "task-clock,context-switches,cpu-migrations,page-faults",
                                            "-p", str(wpid), "-o", stat_txt])
                    prec = None
                    if not a.no_record:
                        prec = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "2999", "-q",
                                                 "-p", str(wpid), "-o", os.path.join(work, tag + ".data")],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(0.5)
                    load = open("/proc/loadavg").read().split()[0]
                    t0 = sysinfo.tree_run_ns([wpid]); c0 = sysinfo.tree_cpu([wpid])
                    out = subprocess.run(scenarios.wrk_argv(spec, scen, port, c, a.duration, ds),
                                         capture_output=True, text=True, timeout=a.duration + 60).stdout
                    t1 = sysinfo.tree_run_ns([wpid]); c1 = sysinfo.tree_cpu([wpid])
                    st = open(f"/proc/{wpid}/stat").read()
                    pst.send_signal(2)
                    if prec:
                        prec.send_signal(2)
                        prec.wait(timeout=120)
                    pst.wait(timeout=60)
                    m = re.search(r"(\d+) requests in", out)
                    n = int(m.group(1)) if m else 0
                    rec = {"round": r, "conns": c, "server": name, "requests": n, "load1": load,
                           "sched_us": sysinfo.run_delta_s(t0, t1) * 1e6 / max(n, 1),
                           "tick_us": sysinfo.cpu_delta(c0, c1) * 1e6 / max(n, 1)}
                    log.write(json.dumps(rec) + "\n"); log.flush()
                    print(rec, flush=True)
                    if prec:
                        rep = subprocess.run(["perf", "report", "-i", os.path.join(work, tag + ".data"),
                                              "--stdio", "--no-children", "--sort", "dso,sym",
                                              "--percent-limit", "0.3"],
                                             capture_output=True, text=True, timeout=300).stdout
                        with open(os.path.join(a.out, tag + ".report.txt"), "w") as f:
                            f.write(rep)
                        rep = subprocess.run(["perf", "report", "-i", os.path.join(work, tag + ".data"),
                                              "--stdio", "--no-children", "--sort", "dso"],
                                             capture_output=True, text=True, timeout=300).stdout
                        with open(os.path.join(a.out, tag + ".dso.txt"), "w") as f:
                            f.write(rep)
    finally:
        for name, p, *_ in insts:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
