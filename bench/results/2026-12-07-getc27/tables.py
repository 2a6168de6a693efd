#!/usr/bin/env python3
"""tables.md from explain/ and syscalls/get_conns_perf.json (bench/get_conns_perf.py's output): per run and
process, CPU (task-clock), system calls, epoll batches and context switches per GET. usage: python3 tables.py"""
import json

for name in ("explain", "syscalls"):
    rs = json.load(open(f"{name}/get_conns_perf.json"))
    print(f"### {name}/ (get_conns_perf.py)\n")
    print("| run | server process | CPU µs/GET (task-clock) | syscalls/GET | of which | epoll_wait/GET | GETs per epoll_wait "
          "| events per epoll_wait | cs/GET | other cores |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rs:
        for comm, p in r["procs"].items():
            if p["task_clock_us_per_get"] < 0.05:
                continue
            sc = {k: v for k, v in p["syscalls_per_get"].items() if v >= 0.01 and k != "epoll_wait"}
            print(f"| {r['tag']} | {comm} | {p['task_clock_us_per_get']} | {p['syscalls_total_per_get']} | "
                  f"{' '.join(f'{k} {v:.3f}' for k, v in sc.items())} | {p['syscalls_per_get'].get('epoll_wait', 0):.4f} | "
                  f"{p['gets_per_epoll_call']} | {p['epoll_events_per_call']} | {p['cs_per_get']} | {r['other_cores']} |")
    print()
