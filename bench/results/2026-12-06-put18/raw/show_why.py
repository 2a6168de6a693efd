#!/usr/bin/env python3
"""Prints why_kernel.py's rows (a JSON file or its log) as one line per cell, and per-cell medians over rounds."""
import json
import statistics
import sys
from collections import defaultdict

KEYS = [("rps", "rps"), ("srv_task_clock_us_per_req", "cpu"), ("srv_user_us_per_req", "usr"),
        ("srv_sys_us_per_req", "sys"), ("srv_syscalls_per_req", "calls"), ("srv_read_per_req", "read"),
        ("srv_recvfrom_per_req", "recvfrom"), ("srv_write_per_req", "write"), ("srv_writev_per_req", "writev"),
        ("srv_epoll_wait_per_req", "epoll_wait"), ("srv_epoll_ctl_per_req", "epoll_ctl"),
        ("srv_vol_switches_per_req", "vol_sw"), ("srv_nonvol_switches_per_req", "invol_sw"),
        ("srv_migrations_per_req", "migr"), ("sock_pure_out_per_data_seg", "pure_out/seg"),
        ("sock_pure_in_per_data_seg", "pure_in/seg"), ("sock_data_segs_in_per_out", "segs_in/out"),
        ("writer_cpu_us_per_req", "writer_proc_cpu"), ("wrk_cpu_us_per_req", "wrk_cpu"), ("wrk_switches_per_req", "wrk_sw")]


def rows(path):
    text = open(path).read()
    try:
        return json.loads(text)["rows"]
    except ValueError:
        return [json.loads(l) for l in text.splitlines() if l.startswith("{")]


def main():
    rs = rows(sys.argv[1])
    cells = defaultdict(list)
    for r in rs:
        cells[(r["conns"], r["server"])].append(r)
    print("per-request medians over rounds [rounds]; load " +
          f"{min(r['load'] for r in rs):.1f}-{max(r['load'] for r in rs):.1f}")
    for (conns, server), rr in sorted(cells.items()):
        parts = []
        for k, name in KEYS:
            vals = [r[k] for r in rr if k in r]
            if not vals:
                continue
            med = statistics.median(vals)
            parts.append(f"{name} {med:g}")
        print(f"c={conns} {server}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
