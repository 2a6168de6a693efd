#!/usr/bin/env python3
"""What one abuser costs the server, per unit of abuse: server CPU per garbage connection (and per MB
of garbage) and per slow-read response, with no wrk beside it, for several kingx binaries (and nginx
for the garbage flood) in interleaved rounds.

Each round, each case, the servers in a shuffled order: start the server (one worker) on CPU S, the
abuse tool on CPU A (--pin S:A, default 0:1), let the abuse run --seconds, and divide the CPU the
server's process tree used in that window (user + system, /proc) by the units served in it:
  garbage    abuse_clients.py garbage, 64 connections sending random bytes and reconnecting when
             closed; unit: a connection the server accepted (kingx: kingx_http_connections_opened_total;
             nginx: the tool's count); also per MB the tool sent
  slow-read  slowhttptest -X as in bench/abuse.py (3,000 readers of a 1 MiB value, 1,000 new a
             second); unit: a response (kingx_http_responses_total, kingx only)
The kingx counters of /metrics that the cuts touch (lingering bytes, cut lingers, writes that found
the socket full) are recorded beside, where the binary has them.

  bench/abuse_cost.py --kingx main=/work/ref/s17/kingx --kingx new=build-release/src/kingx --nginx \\
      --rounds 3 --seconds 10 --out bench/results/DIR/cost

Results: OUT/cost.json (one row per round, case and server) and OUT/summary.md; each server's
files live in a temporary directory removed after its run. Every process started here is stopped
by its PID.
"""
import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import abuse  # noqa: E402
from harness import procs  # noqa: E402

COUNTERS = ["kingx_http_connections_opened_total", "kingx_http_linger_discarded_bytes_total",
            "kingx_http_linger_cut_total", "kingx_http_writes_blocked_total", "kingx_http_received_bytes_total"]


def kingx_metrics(port):
    _, body = procs.http_request(port, "GET", "/metrics", timeout_s=30)
    text = body.decode()
    out = {}
    for name in COUNTERS:
        m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
        out[name] = float(m.group(1)) if m else None
    out["responses_2xx"] = float(re.search(r'^kingx_http_responses_total\{class="2xx"\} (\S+)$', text, re.M).group(1))
    return out


def abuse_argv(case, server, seconds):
    if case == "garbage":
        return [sys.executable, os.path.join(abuse.HERE, "abuse_clients.py"), "garbage", "--port", str(server.port),
                "--conns", "64", "--seconds", str(seconds)]
    return ["slowhttptest", "-l", str(seconds + 30), "-p", "3", "-r", "1000", "-X", "-c", "3000", "-w", "512",
            "-y", "1024", "-n", "5", "-z", "32", "-k", "3", "-u", server.url(server.big)]


def measure(case, name, binary, args, workdir, server_cpus, abuse_cpus):
    os.makedirs(workdir, exist_ok=True)
    with abuse.spawning_on(server_cpus):
        server = abuse.one_worker_server(name, binary, workdir)
    tool = None
    try:
        time.sleep(1)  # the server settles after its start and the PUTs
        before = kingx_metrics(server.port) if binary else None
        load = os.getloadavg()[0]
        cpu0, t0 = abuse.server_cpu_s(server), time.monotonic()
        with abuse.spawning_on(abuse_cpus):
            tool = procs.Proc(f"abuse-{case}", abuse_argv(case, server, args.seconds),
                              os.path.join(workdir, f"abuse-{case}.log"))
        time.sleep(args.seconds)
        cpu1, t1 = abuse.server_cpu_s(server), time.monotonic()
        after = kingx_metrics(server.port) if binary else None
        tool.stop()
        tail = tool.log_tail(400).strip().splitlines()
        tool = None
        row = {"case": case, "server": name, "seconds": round(t1 - t0, 2), "server_cpu_s": round(cpu1 - cpu0, 3),
               "loadavg_before": load, "loadavg_after": os.getloadavg()[0],
               "cpus_server": abuse.cpus_allowed(server.proc.pid), "cpus_abuse": "".join(str(c) for c in abuse_cpus)}
        if before and after:
            row["counters"] = {k: (after[k] - before[k]) if after[k] is not None and before[k] is not None else None
                               for k in after}
        if case == "garbage":
            try:
                flood = json.loads(tail[-1])
            except (ValueError, IndexError):
                flood = {}
            row["flood"] = flood  # the tool's counters: its whole run (a little longer than the window)
            units = row["counters"]["kingx_http_connections_opened_total"] if binary else flood.get("connections")
            row["unit"] = "garbage connection"
            if flood.get("bytes_sent"):
                row["server_cpu_ms_per_mb_sent"] = round(row["server_cpu_s"] * 1e3 / (flood["bytes_sent"] / 1e6), 3)
        else:
            units = row["counters"]["responses_2xx"] if binary else None
            row["unit"] = "slow-read response"
        row["units"] = units
        row["server_cpu_us_per_unit"] = round(row["server_cpu_s"] * 1e6 / units, 1) if units else None
        return row
    finally:
        if tool is not None:
            tool.stop()
        server.stop()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", action="append", default=[], metavar="NAME=BIN")
    ap.add_argument("--nginx", action="store_true", help="nginx too (garbage only: it has no response counter)")
    ap.add_argument("--cases", default="garbage,slow-read")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--pin", default="0:1")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    s, a = args.pin.split(":")
    server_cpus, abuse_cpus = {int(c) for c in s.split(",")}, {int(c) for c in a.split(",")}
    abuse.BIG = random.Random(args.seed).randbytes(1 << 20)
    servers = [tuple(k.split("=", 1)) for k in args.kingx]
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for rnd in range(1, args.rounds + 1):
        for case in args.cases.split(","):
            order = servers + ([("nginx", None)] if args.nginx and case == "garbage" else [])
            rng.shuffle(order)
            for name, binary in order:
                abuse.log(f"round {rnd} {case} {name}")
                workdir = tempfile.mkdtemp(prefix=f"kingx-cost-{case}-{name}-")
                try:
                    row = measure(case, name, binary, args, workdir, server_cpus, abuse_cpus)
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
                row["round"] = rnd
                rows.append(row)
                abuse.log(json.dumps(row))
                with open(os.path.join(args.out, "cost.json"), "w") as f:
                    json.dump({"argv": sys.argv, "rows": rows}, f, indent=1)
    lines = ["| case | server | server CPU µs per unit (rounds) | units (rounds) | ms per MB of garbage | load |",
             "|---|---|---|---|---|---|"]
    keys = sorted({(r["case"], r["server"]) for r in rows})
    for case, name in keys:
        rs = [r for r in rows if r["case"] == case and r["server"] == name]
        j = " / ".join
        lines.append(f"| {case} | {name} | {j(str(r['server_cpu_us_per_unit']) for r in rs)} | "
                     f"{j(str(r['units']) for r in rs)} | {j(str(r.get('server_cpu_ms_per_mb_sent', '')) for r in rs)} | "
                     f"{j(str(round(r['loadavg_before'])) for r in rs)} |")
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
