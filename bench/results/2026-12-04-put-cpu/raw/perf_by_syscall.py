#!/usr/bin/env python3
"""Share of a process's perf samples by the system call (or page fault) they were taken in.
Usage: perf script -i perf.data --comm kingx-worker | python3 perf_by_syscall.py"""
import collections
import sys

KEYS = ["sys_write", "sys_read", "sys_epoll_wait", "sys_epoll_ctl", "exc_page_fault", "sys_futex", "sys_close"]
count, n = collections.Counter(), 0
for sample in sys.stdin.read().split("\n\n"):
    lines = sample.strip().split("\n")
    if len(lines) < 2:
        continue
    n += 1
    frames = " ".join(lines[1:])
    kind = next((k for k in KEYS if k in frames), None)
    if kind is None:
        kind = "kernel, other" if "[kernel.kallsyms]" in lines[1] else "user space"
    count[kind] += 1
print(f"{n} samples")
for k, v in count.most_common():
    print(f"{100 * v / n:5.1f}%  {k}")
