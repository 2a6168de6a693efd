#!/usr/bin/env python3
"""Where the garbage flood's lost wrk throughput goes, pinned as bench/abuse.py --pin 0:1 pins it
(server + wrk on CPU 0, the flood tool on CPU 1).

Per server, in one window each: wrk alone, then wrk beside the garbage flood (64 connections,
bench/abuse_clients.py garbage). Recorded per window: wrk requests, the server's CPU (user + system
of its process tree), each CPU's busy time from /proc/stat (user, system, softirq, ... : all but
idle and iowait), the flood tool's CPU, and kingx's counters (connections opened, 2xx and 4xx
responses). Derived: the server's CPU spent on the flood (its CPU minus wrk's requests at the alone
cost), the share of CPU 0 the server and wrk each got, whether CPU 1 (the tool) was saturated, and
flood connections accepted per wrk request.

  split.py SECONDS ROUNDS name=BIN [name=BIN ...] > split.json
"""
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../.."))
import abuse  # noqa: E402
from harness import procs  # noqa: E402


def cpu_busy():
    """{cpu: (busy_s, softirq_s)} from /proc/stat."""
    tck = os.sysconf("SC_CLK_TCK")
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+) (.*)", line)
            if m:
                v = [int(x) for x in m.group(2).split()]
                idle = v[3] + v[4]
                out[int(m.group(1))] = ((sum(v[:8]) - idle) / tck, v[6] / tck)
    return out


def counters(port):
    _, body = procs.http_request(port, "GET", "/metrics", timeout_s=30)
    text = body.decode()
    get = lambda pat: float(re.search(pat, text, re.M).group(1))  # noqa: E731
    return {"opened": get(r"^kingx_http_connections_opened_total (\S+)$"),
            "2xx": get(r'^kingx_http_responses_total\{class="2xx"\} (\S+)$'),
            "4xx": get(r'^kingx_http_responses_total\{class="4xx"\} (\S+)$')}


def window(server, seconds, flood):
    tool = None
    c0, b0, s0 = counters(server.port), cpu_busy(), abuse.server_cpu_s(server)
    with abuse.spawning_on({0}):
        wrk = abuse.start_wrk(server.url(server.small), 50, seconds, {0})
    if flood:
        with abuse.spawning_on({1}):
            tool = procs.Proc("garbage", [sys.executable, os.path.join(abuse.HERE, "abuse_clients.py"), "garbage",
                                          "--port", str(server.port), "--conns", "64", "--seconds",
                                          str(seconds + 30)], os.path.join(server.workdir, "garbage.log"))
    time.sleep(seconds - 0.3)
    tool_cpu = abuse.proc_cpu_s(tool.pid) if tool else 0.0
    wrk_cpu = abuse.proc_cpu_s(wrk.pid)  # sampled just before wrk ends
    rps, p99, errors, requests = abuse.finish_wrk(wrk, seconds)
    s1, b1, c1 = abuse.server_cpu_s(server), cpu_busy(), counters(server.port)
    if tool:
        tool.stop()
    d = {k: c1[k] - c0[k] for k in c0}
    return {"wrk_rps": rps, "wrk_requests": requests, "wrk_errors": errors, "server_cpu_s": round(s1 - s0, 3),
            "cpu0_busy_s": round(b1[0][0] - b0[0][0], 2), "cpu0_softirq_s": round(b1[0][1] - b0[0][1], 2),
            "cpu1_busy_s": round(b1[1][0] - b0[1][0], 2), "cpu1_softirq_s": round(b1[1][1] - b0[1][1], 2),
            "tool_cpu_s": round(tool_cpu, 2), "wrk_cpu_s": round(wrk_cpu, 2), "opened": d["opened"], "2xx": d["2xx"], "4xx": d["4xx"],
            "load": os.getloadavg()[0]}


def main():
    seconds, rounds = int(sys.argv[1]), int(sys.argv[2])
    servers = [tuple(a.split("=", 1)) for a in sys.argv[3:]]
    abuse.BIG = random.Random(1).randbytes(1 << 20)
    rng = random.Random(seconds * 100 + rounds)
    rows = []
    for rnd in range(1, rounds + 1):
        order = list(servers)
        rng.shuffle(order)
        for name, binary in order:
            workdir = tempfile.mkdtemp(prefix=f"kingx-split-{name}-")
            try:
                with abuse.spawning_on({0}):
                    server = abuse.kingx_server(binary, workdir, 1, "event", [], name=name)
                try:
                    abuse.run_wrk(server.url(server.small), 50, 2, {0})  # warm-up
                    alone = window(server, seconds, False)
                    flood = window(server, seconds, True)
                finally:
                    server.stop()
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            us_alone = alone["server_cpu_s"] * 1e6 / alone["wrk_requests"]
            flood_cpu = flood["server_cpu_s"] - flood["wrk_requests"] * us_alone / 1e6
            accepted = flood["opened"] - 50
            row = {"round": rnd, "server": name, "alone": alone, "flood": flood,
                   "wrk_ratio": round(flood["wrk_requests"] / alone["wrk_requests"], 3),
                   "server_us_per_wrk_req_alone": round(us_alone, 2),
                   "server_cpu_on_flood_s": round(flood_cpu, 3),
                   "server_share_of_cpu0_alone": round(alone["server_cpu_s"] / alone["cpu0_busy_s"], 3),
                   "server_share_of_cpu0_flood": round(flood["server_cpu_s"] / flood["cpu0_busy_s"], 3),
                   "flood_share_of_server_cpu": round(flood_cpu / flood["server_cpu_s"], 3),
                   "flood_accepts_per_wrk_req": round(accepted / flood["wrk_requests"], 4),
                   "server_us_per_flood_conn": round(flood_cpu * 1e6 / accepted, 1) if accepted > 0 else None,
                   "cpu1_busy_frac": round(flood["cpu1_busy_s"] / seconds, 3),
                   "wrk_cpu_s_alone_flood": [alone["wrk_cpu_s"], flood["wrk_cpu_s"]],
                   "server_cpu_s_alone_flood": [alone["server_cpu_s"], flood["server_cpu_s"]],
                   "others_on_cpu0_s_alone_flood": [round(alone["cpu0_busy_s"] - alone["server_cpu_s"] - alone["wrk_cpu_s"], 2),
                                                    round(flood["cpu0_busy_s"] - flood["server_cpu_s"] - flood["wrk_cpu_s"], 2)],
                   "wrk_us_per_req_alone_flood": [round(alone["wrk_cpu_s"] * 1e6 / alone["wrk_requests"], 2),
                                                  round(flood["wrk_cpu_s"] * 1e6 / flood["wrk_requests"], 2)]}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    json.dump(rows, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
