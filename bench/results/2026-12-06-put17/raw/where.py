#!/usr/bin/env python3
"""Where a durable PUT's CPU goes, from one perfput.sh run (OUTPREFIX given):
CPU per answered request of each thread (user / system, /proc ticks over the measured window),
and the worker's perf samples by system call (perf_by_syscall's classes).
Usage: where.py OUTPREFIX"""
import collections
import os
import re
import subprocess
import sys

out = sys.argv[1]
tick = os.sysconf("SC_CLK_TCK")
wrk = open(out + ".wrk").read()
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", wrk).group(1))
secs = float(re.search(r"requests in ([0-9.]+)s", wrk).group(1))
reqs = rps * secs


def snap(path):
    d = {}
    for line in open(path):
        pid, pcomm, tcomm, u, s = line.split()
        d[(pcomm, tcomm, pid)] = (int(u), int(s))
    return d


a, b = snap(out + ".cpu0"), snap(out + ".cpu1")
print(f"{reqs:.0f} requests in {secs} s ({rps:.0f}/s); load: {open(out + '.uptime').read().split('average:')[1].split()[0]}")
tot_u = tot_s = 0
rows = collections.defaultdict(lambda: [0, 0])
for k, (u1, s1) in b.items():
    u0, s0 = a.get(k, (0, 0))
    rows[(k[0], k[1])][0] += (u1 - u0) / tick
    rows[(k[0], k[1])][1] += (s1 - s0) / tick
print(f"{'process/thread':34} {'user us/PUT':>11} {'sys us/PUT':>10} {'total':>7}")
for (p, t), (u, s) in sorted(rows.items(), key=lambda kv: -sum(kv[1])):
    if u + s == 0:
        continue
    tot_u += u
    tot_s += s
    print(f"{p + '/' + t:34} {u / reqs * 1e6:11.1f} {s / reqs * 1e6:10.1f} {(u + s) / reqs * 1e6:7.1f}")
print(f"{'all':34} {tot_u / reqs * 1e6:11.1f} {tot_s / reqs * 1e6:10.1f} {(tot_u + tot_s) / reqs * 1e6:7.1f}")

KEYS = ["sys_write", "sys_read", "sys_epoll_wait", "sys_epoll_ctl", "sys_fdatasync", "sys_pwrite64", "sys_poll",
        "exc_page_fault", "sys_futex", "sys_close"]
script = subprocess.run(["perf", "script", "-i", out + ".data"], capture_output=True, text=True).stdout
by = collections.defaultdict(collections.Counter)
for sample in script.split("\n\n"):
    lines = sample.strip().split("\n")
    if len(lines) < 2:
        continue
    comm = lines[0].split()[0]
    frames = " ".join(lines[1:])
    kind = next((k for k in KEYS if k in frames), None)
    if kind is None:
        kind = "kernel, other" if "[kernel.kallsyms]" in lines[1] else "user space"
    by[comm][kind] += 1
total = sum(sum(c.values()) for c in by.values())
print(f"\nperf samples ({total}) by thread and where they were taken:")
for comm, c in sorted(by.items(), key=lambda kv: -sum(kv[1].values())):
    n = sum(c.values())
    print(f"  {comm}: {100 * n / total:.1f}% of all — " + ", ".join(f"{k} {100 * v / n:.0f}%" for k, v in c.most_common()))
