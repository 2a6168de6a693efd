#!/usr/bin/env python3
"""Why the worker's kernel time per PUT: per answered request, beside nginx PUT-discard and kingx --sync none,
in interleaved rounds, for the serving process (nginx's one worker, kingx's one worker) and wrk:
  - TCP segments of the server's own sockets mid-run (ss -ti: segments without data per data segment, each
    way), and machine-wide segments and delayed ACKs per request (/proc/net/snmp, netstat: polluted by any
    other loopback traffic on the machine);
  - system calls by kind (perf stat tracepoints syscalls:sys_enter_*, raw_syscalls:sys_enter), context switches
    (voluntary = the process slept: a wake-up; nonvoluntary = preempted, /proc/PID/status), CPU migrations,
    CPU user/sys (/proc/PID/stat ticks) and task-clock (perf) of the serving process, wrk's task-clock and
    context switches; all over the whole wrk run, divided by wrk's count of answered requests;
  - requests per epoll_wait.
With --perf-dir, the last round's cells also get a perf record -g of the serving process.
With LABEL=PATH@SYNC@pin, that kingx's worker is pinned to CPU 0 and its writer process (every thread) to CPU 1
(taskset), wrk left free; with @pinw only the writer process is pinned (to CPU 1). The writer process's CPU per request is reported for every kingx.
Usage: why_kernel.py --bin LABEL=PATH[@SYNC[@pin|@pinw]] ... [--nginx] [--conns 100,1000] [--rounds 2] [--duration 5]
                     [--keys 100000] [--perf-dir DIR] --out FILE
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
CALLS = ["read", "write", "writev", "readv", "recvfrom", "sendto", "sendmsg", "recvmsg", "epoll_wait",
         "epoll_pwait", "epoll_ctl", "futex", "poll", "accept4"]
EVENTS = (["raw_syscalls:sys_enter", "context-switches", "cpu-migrations", "task-clock"] +
          [f"syscalls:sys_enter_{c}" for c in CALLS])


def snmp():
    out = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        with open(path) as f:
            lines = f.read().splitlines()
        for i in range(0, len(lines) - 1, 2):
            names = lines[i].split()
            vals = lines[i + 1].split()
            prefix = names[0].rstrip(":")
            for n, v in zip(names[1:], vals[1:]):
                try:
                    out[prefix + n] = int(v)
                except ValueError:
                    pass
    return out


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    vol = nonvol = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                vol = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                nonvol = int(line.split()[1])
    return {"user_s": int(fields[11]) / tick, "sys_s": int(fields[12]) / tick, "vol": vol, "nonvol": nonvol}


def child_named(master_pid, name):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                text = f.read()
            fields = text.rsplit(")", 1)[1].split()
            comm = text.split("(", 1)[1].rsplit(")", 1)[0]
        except OSError:
            continue
        if int(fields[1]) == master_pid and name in comm:
            return int(pid)
    return None


def perf_parse(text):
    out = {}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) > 3:
            try:
                out[parts[2]] = float(parts[0])
            except ValueError:
                pass
    return out


def sock_segs(port):
    """Summed segs_out, data_segs_out, segs_in, data_segs_in of the server's sockets on port (ss -ti)."""
    r = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                       text=True, timeout=60)
    tot = {"segs_out": 0, "data_segs_out": 0, "segs_in": 0, "data_segs_in": 0}
    for k in tot:
        tot[k] = sum(int(v) for v in re.findall(rf"(?<![a-z_]){k}:([0-9]+)", r.stdout))
    return tot


def one_run(port, path, conns, duration, keys, server_pid, perf_out=None, writer_pid=None):
    """One wrk run; the server process's counters over the whole run (perf stat attached before wrk starts,
    stopped after it ends), divided by wrk's count of answered requests. Segments from the server's sockets
    between 1 s into the run and 1 s before its end (ratios per data segment, independent of the count)."""
    perf = subprocess.Popen(["perf", "stat", "-x,", "-e", ",".join(EVENTS), "-p", str(server_pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rec = None
    if perf_out:
        rec = subprocess.Popen(["perf", "record", "-q", "-g", "-F", "1999", "-o", perf_out, "-p", str(server_pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    s0, p0 = snmp(), proc_stat(server_pid)
    w0 = proc_stat(writer_pid) if writer_pid else None
    wrap = ["perf", "stat", "-x,", "-e", "context-switches,task-clock", "--"]
    if perf_out:  # wrk's own profile beside the server's
        wrap += ["perf", "record", "-q", "-g", "-F", "1999", "-o", perf_out.replace(".perf.data", ".wrk.perf.data"), "--"]
    wrk = subprocess.Popen(wrap + [
                            "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "10s", "-s", LUA,
                            f"http://127.0.0.1:{port}/", "--", "keyp=k", f"nkeys={keys}", "size=100",
                            f"put_prefix={path}", "putfrac=1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    k0 = sock_segs(port)
    time.sleep(max(0.5, duration - 2.0))
    k1 = sock_segs(port)
    out, err = wrk.communicate(timeout=duration + 60)
    s1, p1 = snmp(), proc_stat(server_pid)
    w1 = proc_stat(writer_pid) if writer_pid else None
    if rec is not None:
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=120)
    perf.send_signal(signal.SIGINT)
    _, perr = perf.communicate(timeout=60)
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    n = int(re.search(r"([0-9]+) requests in", out).group(1))
    wstat = perf_parse(err)
    pstat = perf_parse(perr)
    dso = max(1, k1["data_segs_out"] - k0["data_segs_out"])
    dsi = max(1, k1["data_segs_in"] - k0["data_segs_in"])
    row = {"rps": round(rps), "requests": n,
           # the server's own sockets, mid-run: segments without data per data segment, each way
           "sock_pure_out_per_data_seg": round(((k1["segs_out"] - k0["segs_out"]) - dso) / dso, 4),
           "sock_pure_in_per_data_seg": round(((k1["segs_in"] - k0["segs_in"]) - dsi) / dsi, 4),
           "sock_data_segs_in_per_out": round(dsi / dso, 4),
           "net_segs_per_req_machine": round((s1["TcpOutSegs"] - s0["TcpOutSegs"]) / n, 3),
           "delayed_acks_per_req_machine": round((s1.get("TcpExtDelayedACKs", 0) - s0.get("TcpExtDelayedACKs", 0)) / n, 4),
           "srv_user_us_per_req": round((p1["user_s"] - p0["user_s"]) / n * 1e6, 2),
           "srv_sys_us_per_req": round((p1["sys_s"] - p0["sys_s"]) / n * 1e6, 2),
           "srv_task_clock_us_per_req": round(pstat.get("task-clock", 0) * 1e3 / n, 2),
           "srv_vol_switches_per_req": round((p1["vol"] - p0["vol"]) / n, 4),
           "srv_nonvol_switches_per_req": round((p1["nonvol"] - p0["nonvol"]) / n, 4),
           "srv_migrations_per_req": round(pstat.get("cpu-migrations", 0) / n, 4),
           "srv_syscalls_per_req": round(pstat.get("raw_syscalls:sys_enter", 0) / n, 3),
           "wrk_cpu_us_per_req": round(wstat.get("task-clock", 0) * 1e3 / n, 2),
           "wrk_switches_per_req": round(wstat.get("context-switches", 0) / n, 4)}
    if w0 is not None:  # the writer process, all its threads
        row["writer_cpu_us_per_req"] = round((w1["user_s"] + w1["sys_s"] - w0["user_s"] - w0["sys_s"]) / n * 1e6, 2)
    for c in CALLS:
        v = pstat.get(f"syscalls:sys_enter_{c}", 0)
        if v:
            row[f"srv_{c}_per_req"] = round(v / n, 4)
    ew = pstat.get("syscalls:sys_enter_epoll_wait", 0) + pstat.get("syscalls:sys_enter_epoll_pwait", 0)
    if ew:
        row["srv_requests_per_epoll_wait"] = round(n / ew, 2)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", default=[])
    ap.add_argument("--nginx", action="store_true")
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--perf-dir", help="also perf record -g the serving process, last round, one file per cell")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="put-why-")
    servers = {}
    rows = []
    try:
        if a.nginx:
            p, port = peers.start_nginx(os.path.join(work, "nginx"), 1)
            time.sleep(0.5)
            servers["nginx"] = (p, port, "/r/k", child_named(p.pid, "nginx"), None)
        for spec in a.bin:
            label, path = spec.split("=", 1)
            path, _, sync = path.partition("@")
            sync, _, pin = sync.partition("@")  # LABEL=PATH@SYNC@pin: worker on CPU 0, writer process on CPU 1
            d = os.path.join(work, label)
            os.makedirs(os.path.join(d, "data"))
            port = procs.free_port()
            argv = [os.path.abspath(path), "--listen", f"127.0.0.1:{port}", "--data", os.path.join(d, "data"),
                    "--workers", "1", "--sync", sync or "always", "--access-log", "off",
                    "--max-connections", "19000"]
            kp = procs.Proc("kingx", argv, os.path.join(d, "kingx.log"))
            procs.wait_http_ok(port, "/readyz", 60, kp)
            wpid, rpid = child_named(kp.pid, "kingx-worker"), child_named(kp.pid, "kingx-writer")
            if pin == "pin":
                subprocess.run(["taskset", "-a", "-p", "-c", "0", str(wpid)], check=True, capture_output=True)
            if pin in ("pin", "pinw"):
                subprocess.run(["taskset", "-a", "-p", "-c", "1", str(rpid)], check=True, capture_output=True)
            servers[label] = (kp, port, "/v1/kv/k", wpid, rpid)
        for label, (p, port, path, wpid, rpid) in servers.items():
            if wpid is None:
                raise RuntimeError(f"{label}: no worker process found")
            subprocess.run(["wrk", "-t1", "-c100", "-d2s", "-s", LUA, f"http://127.0.0.1:{port}/", "--", "keyp=k",
                            f"nkeys={a.keys}", "size=100", f"put_prefix={path}", "putfrac=1"],
                           capture_output=True, timeout=60)
        for rnd in range(1, a.rounds + 1):
            for conns in [int(c) for c in a.conns.split(",")]:
                order = list(servers.items())
                if rnd % 2 == 0:
                    order.reverse()
                for label, (p, port, path, wpid, rpid) in order:
                    row = {"round": rnd, "server": label, "conns": conns, "load": os.getloadavg()[0]}
                    pout = None
                    if a.perf_dir and rnd == a.rounds:
                        os.makedirs(a.perf_dir, exist_ok=True)
                        pout = os.path.join(a.perf_dir, f"{label}-c{conns}.perf.data")
                    row.update(one_run(port, path, conns, a.duration, a.keys, wpid, pout, rpid))
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        for p, *_ in servers.values():
            p.stop(signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)
    with open(a.out, "w") as f:
        json.dump({"command": " ".join(sys.argv), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
