#!/usr/bin/env python3
"""Where each server's CPU per GET goes at 100 and 1,000 connections, process by process, in one run.

Starts kingx (event model, 1 worker; any number of binaries side by side), nginx `return 200` (1
worker) and Webdis+Redis exactly as bench/compare does (bench/harness), then for every round and
connection count runs the get100 cell (wrk -t1, uniform keys) against each server in turn. Over the
whole wrk run it counts, per process of the server and of its backend (Redis):
  - CPU (utime/stime from /proc, and the scheduler's run time),
  - system calls by name, context switches (voluntary ones are the wake-ups), page faults
    (perf stat on the syscalls tracepoints and software events: no hardware counters needed),
  - epoll_wait calls and the events each returned (perf record of the epoll_wait exits),
and prints them per GET answered (wrk's count). The figures that do not depend on how busy the
machine is are the counts (system calls, events per wake-up); the CPU figures are timed.

usage: bench/get_conns_perf.py --out DIR [--kingx label=BIN ...] [--conns 100,1000] [--keys N]
       [--rounds R] [--duration S] [--servers nginx,webdis]
Python standard library only; needs perf (linux-perf) and root or perf_event_paranoid <= 1.
"""

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import runner, scenarios, servers, sysinfo  # noqa: E402

SYSCALLS = ["epoll_wait", "epoll_pwait", "read", "readv", "recvfrom", "recvmsg", "write", "writev",
            "sendto", "sendmsg", "accept4", "epoll_ctl", "close", "futex", "setsockopt",
            "getsockopt", "ioctl", "clock_gettime", "gettimeofday", "timerfd_settime", "brk",
            "mmap", "munmap", "madvise", "pread64", "openat", "newfstatat", "statx"]
SOFT = ["task-clock", "context-switches", "cpu-migrations", "page-faults"]


def perf_stat_argv(pids, out_path, secs):
    ev = ",".join(f"syscalls:sys_enter_{s}" for s in SYSCALLS) + "," + ",".join(SOFT)
    return ["perf", "stat", "-x,", "--per-thread", "-e", ev, "-p", ",".join(map(str, pids)),
            "-o", out_path, "--", "sleep", str(secs)]


def parse_perf_stat(path):
    """{comm: {event: count}} summed over the threads of each command name."""
    out = collections.defaultdict(lambda: collections.defaultdict(float))
    with open(path) as f:
        for line in f:
            p = line.strip().split(",")
            if len(p) < 4 or not p[0] or p[0].startswith("#"):
                continue
            # --per-thread: comm-tid,value,unit,event,...
            comm = p[0].rsplit("-", 1)[0]
            try:
                v = float(p[1])
            except ValueError:
                continue
            ev = p[3].split(":")[-1].replace("sys_enter_", "")
            out[comm][ev] += v
    return out


def epoll_record_argv(pids, out_path, secs):
    return ["perf", "record", "-q", "-e", "syscalls:sys_exit_epoll_wait", "-e",
            "syscalls:sys_exit_epoll_pwait", "-p", ",".join(map(str, pids)), "-o", out_path, "--",
            "sleep", str(secs)]


def parse_epoll_record(path):
    """{comm: (calls, events returned)} from the recorded epoll_wait exits."""
    out = collections.defaultdict(lambda: [0, 0])
    try:
        text = subprocess.run(["perf", "script", "-i", path, "-F", "comm,trace"], capture_output=True,
                              text=True, timeout=120).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    for line in text.splitlines():
        m = re.match(r"\s*(\S+)\s+.*0x([0-9a-f]+)\s*$", line)
        if not m:
            continue
        ret = int(m.group(2), 16)
        out[m.group(1)][0] += 1
        out[m.group(1)][1] += ret if ret < 1 << 31 else 0
    return {k: tuple(v) for k, v in out.items()}


def proc_cpu(pids):
    """{comm: (user s, system s)} summed over the processes of the trees under pids."""
    out = collections.defaultdict(lambda: [0.0, 0.0])
    for pid in sysinfo.process_tree(pids):
        try:
            with open(f"/proc/{pid}/stat") as f:
                data = f.read()
        except OSError:
            continue
        comm = data[data.index("(") + 1:data.rindex(")")]
        rest = data[data.rindex(")") + 2:].split()
        out[comm][0] += int(rest[11]) / sysinfo.CLK_TCK
        out[comm][1] += int(rest[12]) / sysinfo.CLK_TCK
    return out


def measure(inst, spec, conns, duration_s, dataset, raw_dir, tag):
    """One wrk run against inst with the per-process counters around it; returns a record."""
    scen = scenarios.BY_NAME["get100"]
    argv = scenarios.wrk_argv(spec, scen, inst.port, conns, duration_s, dataset)
    pids = sysinfo.process_tree(inst.server_pids() + inst.backend_pids())
    stat_path = os.path.join(raw_dir, f"{tag}.perfstat.txt")
    rec_path = os.path.join(raw_dir, f"{tag}.epoll.data")
    window = duration_s + 1
    cpu0 = proc_cpu(inst.server_pids() + inst.backend_pids())
    perf_log = open(os.path.join(raw_dir, f"{tag}.perf.log"), "w")
    ps = subprocess.Popen(perf_stat_argv(pids, stat_path, window), stdout=perf_log, stderr=subprocess.STDOUT)
    pr = subprocess.Popen(epoll_record_argv(pids, rec_path, window), stdout=perf_log, stderr=subprocess.STDOUT)
    time.sleep(0.3)  # both attached before the first connection
    rec, text = runner.measure_command(inst, argv, duration_s, os.path.join(raw_dir, f"{tag}.wrk.txt"), 0)
    for p in (ps, pr):
        try:
            p.wait(timeout=window + 60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    perf_log.close()
    cpu1 = proc_cpu(inst.server_pids() + inst.backend_pids())
    w = runner.parse_wrk_json(text)
    n = w["requests"] if w else 0
    counts = parse_perf_stat(stat_path)
    epoll = parse_epoll_record(rec_path)
    os.remove(rec_path)
    procs = {}
    for comm in sorted(set(cpu1) | set(counts)):
        u = cpu1.get(comm, (0, 0))[0] - cpu0.get(comm, (0, 0))[0]
        s = cpu1.get(comm, (0, 0))[1] - cpu0.get(comm, (0, 0))[1]
        c = counts.get(comm, {})
        calls, events = epoll.get(comm, (0, 0))
        per = {k: round(v / max(n, 1), 4) for k, v in sorted(c.items()) if v and k not in SOFT}
        procs[comm] = {
            "user_us_per_get": round(u * 1e6 / max(n, 1), 3), "sys_us_per_get": round(s * 1e6 / max(n, 1), 3),
            "task_clock_us_per_get": round(c.get("task-clock", 0) * 1e3 / max(n, 1), 3),
            "cs_per_get": round(c.get("context-switches", 0) / max(n, 1), 4),
            "faults_per_get": round(c.get("page-faults", 0) / max(n, 1), 5),
            "syscalls_per_get": per, "syscalls_total_per_get": round(sum(per.values()), 3),
            "epoll_calls": calls, "epoll_events_per_call": round(events / calls, 2) if calls else None,
            "gets_per_epoll_call": round(n / calls, 2) if calls else None,
        }
    return {"tag": tag, "server": spec.name, "conns": conns, "gets": n,
            "rps": rec.get("rps") if w is None else round(n / (w["duration_us"] / 1e6), 1),
            "errors": None if w is None else w["err_status"] + w["err_connect"] + w["err_read"],
            "other_cores": rec["other_cores"], "load": open("/proc/loadavg").read().split()[:3],
            "procs": procs}


def line(r):
    parts = [f"{r['tag']}: gets {r['gets']} rps {r['rps']} err {r['errors']} other_cores {r['other_cores']} "
             f"load {' '.join(r['load'])}"]
    for comm, p in r["procs"].items():
        if p["task_clock_us_per_get"] < 0.01 and p["syscalls_total_per_get"] < 0.001:
            continue
        sc = " ".join(f"{k}={v}" for k, v in p["syscalls_per_get"].items() if v >= 0.001)
        parts.append(f"  {comm}: cpu/get {p['task_clock_us_per_get']}us (user {p['user_us_per_get']} sys "
                     f"{p['sys_us_per_get']}) cs/get {p['cs_per_get']} gets/epoll_wait {p['gets_per_epoll_call']} "
                     f"events/epoll_wait {p['epoll_events_per_call']} syscalls/get {p['syscalls_total_per_get']} [{sc}]")
    return "\n".join(parts)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--kingx", action="append", default=[], help="label=BIN (repeatable)")
    ap.add_argument("--servers", default="nginx,webdis", help="peers: nginx, webdis (comma list, may be empty)")
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--template", help="a kingx data directory holding the dataset (k0.., 100 B): skips the preload")
    args = ap.parse_args(argv)
    sysinfo.raise_fd_limit()
    raw = os.path.join(args.out, "raw")
    os.makedirs(raw, exist_ok=True)
    work = tempfile.mkdtemp(prefix="get-conns-perf-", dir="/tmp")
    os.chmod(work, 0o755)  # nginx's workers (another user) read its static files under it
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    dataset = scenarios.Dataset(args.keys, 0, 0)
    specs = []
    first_bin = None
    for item in args.kingx:
        label, path = item.split("=", 1)
        first_bin = first_bin or path
        name = servers.add_kingx_binary(label, os.path.abspath(path))[0]  # kingx-ev1@label
        specs.append(servers.BY_NAME[name])
    peers = {"nginx": "nginx-return-w1", "webdis": "webdis-redis"}
    specs += [servers.BY_NAME[peers[s]] for s in args.servers.split(",") if s]
    ctx = servers.Context(work, dataset, first_bin or "kingx", raw, log)
    ctx.template = args.template
    insts = []
    results = []
    try:
        for spec in specs:
            log(f"starting {spec.name}")
            insts.append(servers.start(spec, "always", ctx))
        for rnd in range(args.rounds):
            for conns in [int(c) for c in args.conns.split(",")]:
                for spec, inst in zip(specs, insts):
                    tag = f"{spec.name}-c{conns}-r{rnd}"
                    r = measure(inst, spec, conns, args.duration, dataset, raw, tag)
                    results.append(r)
                    print(line(r), flush=True)
    finally:
        for inst in insts:
            inst.stop()
        shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(args.out, "get_conns_perf.json"), "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
