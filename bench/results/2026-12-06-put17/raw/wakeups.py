#!/usr/bin/env python3
"""Per answered PUT, beside nginx PUT-discard: the load generator's (wrk's) context switches and CPU,
and the server's CPU and context switches (all processes and threads), in interleaved rounds.
A server that answers in bursts (group commit) lets wrk fall asleep between them: each burst then
starts with a wake-up of wrk that the first answer's write pays.

Usage: wakeups.py --bin LABEL=PATH[@SYNC] ... [--conns 100] [--rounds 3] [--duration 4] [--keys 100000] --out FILE
Every process it starts is stopped by its PID."""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, BENCH)
from harness import peers, procs  # noqa: E402

LUA = os.path.join(BENCH, "lua", "kv.lua")


def tree(root):
    """(cpu seconds, context switches) of root and its children, all threads."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu = sw = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(pid) != root and int(fields[1]) != root:
                continue
            cpu += (int(fields[11]) + int(fields[12])) / tick
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if "ctxt_switches" in line:
                            sw += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return cpu, sw


def run(port, path, conns, duration, keys):
    argv = ["perf", "stat", "-x,", "-e", "context-switches,task-clock", "--",
            "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "10s", "-s", LUA,
            f"http://127.0.0.1:{port}/", "--", "keyp=k", f"nkeys={keys}", "size=100", f"put_prefix={path}",
            "putfrac=1"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", r.stdout).group(1))
    n = int(re.search(r"([0-9]+) requests in", r.stdout).group(1))
    stat = {}
    for line in r.stderr.splitlines():
        parts = line.split(",")
        if len(parts) > 3 and parts[0].replace(".", "").isdigit():
            stat[parts[2]] = float(parts[0])
    return rps, n, stat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", default=[])
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--sync", default="always")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="put-wakeups-")
    servers = {}
    rows = []
    try:
        p, port = peers.start_nginx(os.path.join(work, "nginx"), 1)
        servers["nginx"] = (p, port, "/r/k")
        for spec in a.bin:
            label, path = spec.split("=", 1)
            path, _, sync = path.partition("@")  # LABEL=PATH@SYNC: this server's --sync
            d = os.path.join(work, label)
            os.makedirs(os.path.join(d, "data"))
            port = procs.free_port()
            argv = [os.path.abspath(path), "--listen", f"127.0.0.1:{port}", "--data", os.path.join(d, "data"),
                    "--workers", "1", "--sync", sync or a.sync, "--access-log", "off", "--max-connections", "19000"]
            kp = procs.Proc("kingx", argv, os.path.join(d, "kingx.log"))
            procs.wait_http_ok(port, "/readyz", 60, kp)
            servers[label] = (kp, port, "/v1/kv/k")
        for label, (p, port, path) in servers.items():
            run(port, path, a.conns, 2, a.keys)  # warm-up: creates the keys
        for rnd in range(1, a.rounds + 1):
            order = list(servers.items())
            if rnd % 2 == 0:
                order.reverse()
            for label, (p, port, path) in order:
                c0, s0 = tree(p.pid)
                t0 = time.monotonic()
                rps, n, stat = run(port, path, a.conns, a.duration, a.keys)
                c1, s1 = tree(p.pid)
                row = {"round": rnd, "server": label, "conns": a.conns, "rps": round(rps),
                       "server_cpu_us_per_req": round((c1 - c0) / n * 1e6, 1),
                       "server_switches_per_req": round((s1 - s0) / n, 3),
                       "wrk_cpu_us_per_req": round(stat.get("task-clock", 0) * 1e3 / n, 1),
                       "wrk_switches_per_req": round(stat.get("context-switches", 0) / n, 3),
                       "secs": round(time.monotonic() - t0, 1), "load": os.getloadavg()[0]}
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        for p, _, _ in servers.values():
            p.stop(signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)
    with open(a.out, "w") as f:
        json.dump({"command": " ".join(sys.argv), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
