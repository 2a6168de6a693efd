#!/usr/bin/env python3
"""Where a slow-read abuse's cost goes, second by second: the server's CPU (user and system), its
worker's context switches and system calls, the connections it holds, what the kernel holds unsent
for them, the machine's TCP memory, and the abuse tool's own CPU, for kingx binaries and nginx
through the same slowhttptest -X run (bench/abuse.py's slow-read case), with no wrk beside it.

Each round, the servers in a shuffled order: start the server (one worker) on CPU S, slowhttptest
on CPU A (--pin S:A), sample every second for --seconds; optionally (--strace-at T --strace-s W)
count the worker's system calls with strace -c -f for W seconds from second T (strace slows the
worker it traces: read its counts, not its CPU). The ramp (slowhttptest opens 1,000 connections a
second) and the steady part are told apart by the connections held.

  bench/slowread_profile.py --kingx new=build-release/src/kingx --kingx ref=/work/ref/s25/kingx \\
      --nginx --rounds 2 --seconds 16 --out bench/results/DIR/profile

Results: OUT/profile.json (per round and server: the samples, the strace table) and OUT/summary.md.
Every process started here is stopped by its PID.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import abuse  # noqa: E402


def status_fields(pid, names):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in names:
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def cpu_split(pids):
    """(user s, system s) summed over pids."""
    tck = os.sysconf("SC_CLK_TCK")
    u = s = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            u += int(fields[11])
            s += int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return u / tck, s / tck


def unsent(port):
    """(connections, sum of tx_queue, largest tx_queue) of the server's established sockets on port."""
    n = total = largest = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if int(parts[1].split(":")[1], 16) == port and parts[3] == "01":
                tx = int(parts[4].split(":")[0], 16)
                n += 1
                total += tx
                largest = max(largest, tx)
    return n, total, largest


def sample(server, tool_pid):
    pids = abuse.tree_pids(server.proc.pid)
    workers = server.worker_pids()
    u, s = cpu_split(pids)
    tu, ts = cpu_split([tool_pid])
    sw = {"voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0}
    for pid in workers:
        for k, v in status_fields(pid, set(sw)).items():
            sw[k] += v
    n, total, largest = unsent(server.port)
    return {"t": time.monotonic(), "user_s": u, "sys_s": s, "tool_user_s": tu, "tool_sys_s": ts,
            "vcsw": sw["voluntary_ctxt_switches"], "ivcsw": sw["nonvoluntary_ctxt_switches"], "conns": n,
            "unsent_total": total, "unsent_max": largest, "tcp_mem_pages": abuse.tcp_mem_pages()}


def strace_counts(pid, seconds, path):
    """strace -c -f on pid for seconds; the summary table's rows {syscall: calls}."""
    p = subprocess.Popen(["strace", "-c", "-f", "-o", path, "-p", str(pid)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    p.send_signal(abuse.signal.SIGINT)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    calls = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                    calls[parts[-1]] = int(parts[3])
    except OSError:
        pass
    return calls


def run_one(name, spec, args):
    workdir = tempfile.mkdtemp(prefix=f"slowread-{name}-", dir="/tmp")
    server = tool = None
    try:
        with abuse.spawning_on(args.server_cpus):
            if name == "nginx":
                server = abuse.nginx_server(workdir, 1)
            else:
                binary, _, model = spec.partition(":")
                server = abuse.kingx_server(binary, workdir, 1, model or "event", list(args.kingx_arg), None, name)
        ns = types.SimpleNamespace(settle=0, duration=args.seconds, steady=0, abuse_conns=args.abuse_conns)
        with abuse.spawning_on(args.abuse_cpus):
            tool = abuse.start_abuse(args.case, server, ns, workdir)[0]
        samples = [sample(server, tool.pid)]
        traced = {}
        for sec in range(1, args.seconds + 1):
            if args.strace_s and sec == args.strace_at:
                w = server.worker_pids()
                if w:
                    traced = strace_counts(w[0], args.strace_s, os.path.join(workdir, "strace.txt"))
            else:
                time.sleep(max(0.0, samples[0]["t"] + sec - time.monotonic()))
            samples.append(sample(server, tool.pid))
        return {"samples": samples, "strace": traced, "strace_window": [args.strace_at, args.strace_s]}
    finally:
        if tool is not None:
            tool.stop(abuse.signal.SIGINT, timeout_s=10)
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def rates(samples, a, b):
    """Per second between samples a and b: server CPU ms (user, sys), tool CPU ms, context switches."""
    x, y = samples[a], samples[b]
    dt = y["t"] - x["t"]
    return {"user_ms": 1000 * (y["user_s"] - x["user_s"]) / dt, "sys_ms": 1000 * (y["sys_s"] - x["sys_s"]) / dt,
            "tool_ms": 1000 * (y["tool_user_s"] + y["tool_sys_s"] - x["tool_user_s"] - x["tool_sys_s"]) / dt,
            "csw": (y["vcsw"] + y["ivcsw"] - x["vcsw"] - x["ivcsw"]) / dt}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kingx", action="append", default=[], metavar="NAME=BIN[:MODEL]")
    ap.add_argument("--kingx-arg", action="append", default=[], help="extra kingx flag (repeat)")
    ap.add_argument("--nginx", action="store_true")
    ap.add_argument("--case", default="slow-read")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=16)
    ap.add_argument("--abuse-conns", type=int, default=3000)
    ap.add_argument("--strace-at", type=int, default=0)
    ap.add_argument("--strace-s", type=int, default=0)
    ap.add_argument("--pin", default="0:1")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    args.server_cpus, args.abuse_cpus = abuse.parse_pin(args.pin, set(os.sched_getaffinity(0)))
    abuse.BIG = os.urandom(1 << 20)
    servers = dict(s.split("=", 1) for s in args.kingx)
    if args.nginx:
        servers["nginx"] = ""
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    runs = []
    for rnd in range(1, args.rounds + 1):
        order = list(servers)
        rng.shuffle(order)
        for name in order:
            load = os.getloadavg()[0]
            r = run_one(name, servers[name], args)
            r.update(round=rnd, server=name, load=load, load_after=os.getloadavg()[0])
            runs.append(r)
            s = r["samples"]
            per = [rates(s, i, i + 1) for i in range(len(s) - 1)]
            abuse.log(f"r{rnd} {name}: per second server user+sys ms " +
                      " ".join(f"{p['user_ms'] + p['sys_ms']:.0f}" for p in per) + "; conns " +
                      " ".join(str(x["conns"]) for x in s[1:]))
    with open(os.path.join(args.out, "profile.json"), "w") as f:
        json.dump({"argv": sys.argv, "runs": runs}, f, indent=1)
    lines = [f"# Slow-read cost profile ({args.case}, {args.abuse_conns} connections, no wrk)", "",
             "`" + " ".join(sys.argv) + "`", "",
             "Ramp: from the start to the first second the server holds 95% of the connections it holds at the "
             "end; steady: the rest. Per second: server CPU ms (user / system), the abuse tool's CPU ms, the "
             "worker's context switches; unsent: the kernel's send queue per held connection at the end.", "",
             "| round | server | ramp s | ramp CPU ms/s (user/sys) | steady CPU ms/s (user/sys) | steady csw/s "
             "| tool ms/s ramp / steady | conns held | unsent KiB mean / max | TCP mem MiB | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        s = r["samples"]
        end = s[-1]["conns"]
        k = next((i for i, x in enumerate(s) if x["conns"] >= 0.95 * end), len(s) - 1)
        k = max(k, 1)
        ramp = rates(s, 0, k)
        steady = rates(s, k, len(s) - 1) if k < len(s) - 1 else None
        st = (f"{steady['user_ms']:.0f} / {steady['sys_ms']:.0f}" if steady else "–")
        lines.append(
            f"| {r['round']} | {r['server']} | {s[k]['t'] - s[0]['t']:.0f} | {ramp['user_ms']:.0f} / "
            f"{ramp['sys_ms']:.0f} | {st} | {steady['csw'] if steady else 0:.0f} | {ramp['tool_ms']:.0f} / "
            f"{steady['tool_ms'] if steady else 0:.0f} | {end} | "
            f"{(s[-1]['unsent_total'] / max(1, end)) / 1024:.1f} / {s[-1]['unsent_max'] / 1024:.1f} | "
            f"{s[-1]['tcp_mem_pages'] * 4 / 1024:.0f} | {r['load']:.1f}–{r['load_after']:.1f} |")
    if any(r["strace"] for r in runs):
        lines += ["", f"System calls of the worker in {args.strace_s} s from second {args.strace_at} "
                  "(strace -c -f; the ten most frequent):", ""]
        for r in runs:
            top = sorted(r["strace"].items(), key=lambda kv: -kv[1])[:10]
            lines.append(f"- r{r['round']} {r['server']}: " + ", ".join(f"{k} {v}" for k, v in top))
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
