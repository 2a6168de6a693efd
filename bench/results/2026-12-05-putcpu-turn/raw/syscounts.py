#!/usr/bin/env python3
"""System calls and context switches per durable PUT, per thread of every kingx process, native.

    python3 syscounts.py --bin LABEL=PATH [--bin ...] [--loadgen PATH] [--conns 100] [--seconds 3]
                         [--rounds 1] [--out FILE.json]

Per binary (interleaved rounds): kingx --sync always --workers 1 on an empty temporary directory,
a PUT load of 100 B over 100k keys (the loadgen, --conns connections, 2 s warm-up), then
`perf stat --per-thread -e raw_syscalls:sys_enter,context-switches` on the server's processes for
--seconds while the load runs; PUTs counted from /metrics (kingx_http_requests_total). Counts do
not depend on the machine's load much (a batch's size does: ops per group commit is printed too).
Every process it starts is stopped by its PID."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bench"))
from harness import procs, sysinfo  # noqa: E402


def metric_sum(port, pattern):
    _, body = procs.http_request(port, "GET", "/metrics", timeout_s=30)
    tot = 0.0
    for line in body.decode().splitlines():
        if re.match(pattern, line):
            tot += float(line.rsplit(" ", 1)[1])
    return tot


def thread_names(pids):
    out = {}
    for p in pids:
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/comm") as f:
                    out[int(t)] = (p, f.read().strip())
        except OSError:
            pass
    return out


def run(label, binary, args, work):
    d = tempfile.mkdtemp(prefix="putcpu-", dir=work)
    port = procs.free_port()
    argv = [binary, "--listen", f"127.0.0.1:{port}", "--data", os.path.join(d, "data"), "--workers", "1",
            "--model", "event", "--sync", "always", "--access-log", "off"]
    pr = procs.Proc("kingx", argv, os.path.join(d, "kingx.log"))
    lg = None
    try:
        procs.wait_http_ok(port, "/readyz", 60, pr)
        lg = subprocess.Popen([args.loadgen, "--port", str(port), "--conns", str(args.conns), "--duration",
                               str(args.seconds + 4), "--path", "/v1/kv/k", "--keys", "100000", "--method", "PUT",
                               "--body-bytes", "100"], stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        pids = sysinfo.process_tree([pr.pid])
        names = thread_names(pids)
        req0 = metric_sum(port, r'kingx_http_requests_total\{[^}]*method="PUT"')
        b0 = metric_sum(port, r"kingx_writer_batches_total ")
        st = subprocess.run(["perf", "stat", "--per-thread", "-x", ",", "-e",
                             "raw_syscalls:sys_enter,context-switches,task-clock", "-p",
                             ",".join(map(str, pids)), "--", "sleep", str(args.seconds)],
                            capture_output=True, text=True, timeout=args.seconds + 60)
        req1 = metric_sum(port, r'kingx_http_requests_total\{[^}]*method="PUT"')
        b1 = metric_sum(port, r"kingx_writer_batches_total ")
        lg.communicate(timeout=60)
    finally:
        if lg is not None and lg.poll() is None:
            lg.kill()
            lg.wait()
        pr.stop()
        shutil.rmtree(d, ignore_errors=True)
    puts = req1 - req0
    per = {}
    for line in st.stderr.splitlines():
        f = line.split(",")
        if len(f) < 4 or not re.match(r".*-\d+$", f[0]):
            continue
        tid = int(f[0].rsplit("-", 1)[1])
        try:
            v = float(f[1])
        except ValueError:
            continue
        pid, comm = names.get(tid, (0, f[0]))
        key = f"{comm}:{'main' if tid == pid else 'thread'}:{tid}"
        per.setdefault(key, {})[f[3]] = v
    rows = {}
    for k, ev in per.items():
        if ev.get("raw_syscalls:sys_enter", 0) == 0 and ev.get("task-clock", 0) == 0:
            continue
        rows[k] = {"syscalls_per_put": round(ev.get("raw_syscalls:sys_enter", 0) / puts, 3),
                   "cswitch_per_put": round(ev.get("context-switches", 0) / puts, 3),
                   "cpu_us_per_put": round(ev.get("task-clock", 0) * 1e3 / puts, 2)}
    return {"label": label, "puts": puts, "batches": b1 - b0, "ops_per_batch": round(puts / max(1, b1 - b0), 1),
            "threads": rows, "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", action="append", required=True)
    p.add_argument("--loadgen", default="/work/ref/today/loadgen")
    p.add_argument("--conns", type=int, default=100)
    p.add_argument("--seconds", type=int, default=3)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="putcpu-sys-")
    res = []
    try:
        for r in range(args.rounds):
            for b in args.bin:
                label, path = b.split("=", 1)
                x = run(label, path, args, work)
                x["round"] = r
                res.append(x)
                print(json.dumps(x, indent=1), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
