#!/usr/bin/env python3
"""System calls (by name), context switches and user/kernel CPU per PUT, per thread of the server, native.

    python3 threadcount.py --bin LABEL=PATH[@SYNC] [--bin ...] [--nginx] [--loadgen PATH]
                           [--conns 100,1000] [--seconds 3] [--rounds 1] [--out FILE.json]

Per server (interleaved rounds): kingx --sync SYNC (default always) --workers 1 --model event on an
empty temporary directory, or (--nginx) nginx `return 200` with one worker, the PUT's body discarded
(bench/harness/peers.py's /r/ location); a PUT load of 100 B over 100k keys (bench's loadgen,
--conns connections, 2 s warm-up), then `perf stat --per-thread` on the server's processes for
exactly the run of a second load generator of --seconds: raw_syscalls:sys_enter (every call), one syscalls:sys_enter_NAME
tracepoint per name in NAMES, context-switches; user and kernel CPU per thread from
/proc/PID/task/TID/stat (utime, stime) read around the same window. PUTs: the
second load generator's answered requests.
Every process it starts is stopped by its PID."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bench"))
from harness import peers, procs, sysinfo  # noqa: E402

NAMES = ["read", "write", "writev", "readv", "recvfrom", "sendto", "sendmsg", "epoll_wait", "epoll_pwait",
         "epoll_ctl", "futex", "poll", "ppoll", "fdatasync", "fsync", "pwrite64", "pwritev", "lseek",
         "fstatfs", "statfs", "newfstatat", "mmap", "munmap", "madvise", "fallocate", "accept4",
         "close", "sched_yield", "clock_nanosleep", "nanosleep", "getpid", "rt_sigprocmask"]
TICK = os.sysconf("SC_CLK_TCK")


def metric_sum(port, pattern):
    _, body = procs.http_request(port, "GET", "/metrics", timeout_s=30)
    return sum(float(l.rsplit(" ", 1)[1]) for l in body.decode().splitlines() if re.match(pattern, l))


def puts_batches(port):
    return (metric_sum(port, r'kingx_http_requests_total\{[^}]*method="PUT"'),
            metric_sum(port, r"kingx_writer_batches_total "))


def task_times(pids):
    """{tid: (pid, comm, utime_ticks, stime_ticks)}"""
    out = {}
    for p in pids:
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/stat") as f:
                    s = f.read()
            except OSError:
                continue
            comm = s[s.index("(") + 1:s.rindex(")")]
            fields = s[s.rindex(")") + 2:].split()
            out[int(t)] = (p, comm, int(fields[11]), int(fields[12]))
    return out


def start_kingx(binary, sync, d):
    port = procs.free_port()
    argv = [binary, "--listen", f"127.0.0.1:{port}", "--data", os.path.join(d, "data"), "--workers", "1",
            "--model", "event", "--sync", sync, "--access-log", "off"]
    pr = procs.Proc("kingx", argv, os.path.join(d, "kingx.log"))
    procs.wait_http_ok(port, "/readyz", 60, pr)
    return pr, port, "/v1/kv/k"


def start_nginx(d):
    pr, port = peers.start_nginx(d, 1)
    procs.wait_http_ok(port, "/r", 20, pr)
    return pr, port, "/r/k"


def run(label, binary, sync, conns, args, work):
    d = tempfile.mkdtemp(prefix="putc100-", dir=work)
    is_nginx = binary == "nginx"
    pr, port, path = start_nginx(d) if is_nginx else start_kingx(binary, sync, d)
    try:
        lg_argv = [args.loadgen, "--port", str(port), "--conns", str(conns), "--path", path, "--keys", "100000",
                   "--method", "PUT", "--body-bytes", "100", "--connect-timeout", "30"]
        subprocess.run(lg_argv + ["--duration", "2"], capture_output=True, timeout=120)  # warm-up
        pids = sysinfo.process_tree([pr.pid])
        b0 = 0 if is_nginx else puts_batches(port)[1]
        t0 = task_times(pids)
        ev = ["raw_syscalls:sys_enter", "context-switches", "task-clock"] + \
             [f"syscalls:sys_enter_{n}" for n in NAMES]
        # The counters run exactly while the load generator does: the PUTs are its answers.
        st = subprocess.run(["perf", "stat", "--per-thread", "-x", ",", "-o", os.path.join(d, "perf.csv"), "-e",
                             ",".join(ev), "-p", ",".join(map(str, pids)), "--"] + lg_argv +
                            ["--duration", str(args.seconds)], capture_output=True, text=True,
                            timeout=args.seconds + 120)
        t1 = task_times(pids)
        b1 = 0 if is_nginx else puts_batches(port)[1]
        with open(os.path.join(d, "perf.csv")) as f:
            perf_csv = f.read()
        g = json.loads(next(l for l in st.stdout.splitlines() if l.startswith("LOADGEN "))[8:])
    finally:
        pr.stop()
        shutil.rmtree(d, ignore_errors=True)
    puts = g["requests_ok"]
    per = {}
    for line in perf_csv.splitlines():
        f = line.split(",")
        if len(f) < 4 or not re.match(r".*-\d+$", f[0]):
            continue
        tid = int(f[0].rsplit("-", 1)[1])
        try:
            v = float(f[1])
        except ValueError:
            continue
        per.setdefault(tid, {})[f[3]] = v
    rows = {}
    for tid, evs in per.items():
        if evs.get("raw_syscalls:sys_enter", 0) == 0 and evs.get("task-clock", 0) == 0:
            continue
        pid, comm, u0, s0 = t0.get(tid, (0, str(tid), 0, 0))
        _, _, u1, s1 = t1.get(tid, (0, "", u0, s0))
        key = f"{comm}:{'main' if tid == pid else 'thread'}:{tid}"
        named = {n: round(evs.get(f"syscalls:sys_enter_{n}", 0) / puts, 3) for n in NAMES
                 if evs.get(f"syscalls:sys_enter_{n}", 0) > 0}
        total = evs.get("raw_syscalls:sys_enter", 0)
        other = total - sum(evs.get(f"syscalls:sys_enter_{n}", 0) for n in NAMES)
        if other > 0:
            named["other"] = round(other / puts, 3)
        cpu_us = evs.get("task-clock", 0) * 1e3 / puts
        # task-clock is exact; the tick-sampled utime/stime only split it
        ticks = (u1 - u0) + (s1 - s0)
        sys_share = (s1 - s0) / ticks if ticks else 0.0
        rows[key] = {"syscalls_per_put": round(total / puts, 3),
                     "cswitch_per_put": round(evs.get("context-switches", 0) / puts, 3),
                     "cpu_us_per_put": round(cpu_us, 2),
                     "kernel_us_per_put": round(cpu_us * sys_share, 2),
                     "by_name": named}
    return {"label": label, "conns": conns, "rps": round(g["rps"]), "puts": round(puts),
            "batches": b1 - b0, "ops_per_batch": round(puts / max(1, b1 - b0), 1) if not is_nginx else None,
            "threads": rows, "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", action="append", default=[])
    p.add_argument("--nginx", action="store_true")
    p.add_argument("--loadgen", default="/work/ref/s15/loadgen")
    p.add_argument("--conns", default="100")
    p.add_argument("--seconds", type=int, default=3)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out")
    args = p.parse_args()
    sysinfo.raise_fd_limit()
    servers = []
    for b in args.bin:
        label, spec = b.split("=", 1)
        path, _, sync = spec.partition("@")
        servers.append((label, path, sync or "always"))
    if args.nginx:
        servers.append(("nginx", "nginx", ""))
    work = tempfile.mkdtemp(prefix="putc100-sys-")
    res = []
    try:
        for r in range(args.rounds):
            for c in [int(x) for x in args.conns.split(",")]:
                for label, path, sync in servers:
                    x = run(label, path, sync, c, args, work)
                    x["round"] = r
                    res.append(x)
                    print(json.dumps(x), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
