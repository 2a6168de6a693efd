#!/usr/bin/env python3
"""Per-GET costs of kingx (event model, 1 worker) and nginx `return 200` (1 worker) at several
connection counts, natively, servers rotated per round:
  - server CPU per answered GET (user and system apart, all the server's processes),
  - system calls per GET on the worker, by name (perf stat on syscall tracepoints, low overhead),
  - GETs per epoll_wait wake-up, context switches per GET.
Usage: diag.py --kingx A=BIN[,B=BIN] --template DIR [--conns 100,1000] [--rounds 3] [--seconds 4]
                [--nginx] [--perf-record DIR]
Prints one JSON line per cell. Python standard library, wrk, perf.
"""
import argparse, json, os, shutil, signal, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from harness import kingx, peers, procs, sysinfo  # noqa: E402

LUA = os.path.join(ROOT, "bench", "lua", "kv.lua")
TP = ["raw_syscalls:sys_enter", "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_epoll_pwait",
      "syscalls:sys_enter_read", "syscalls:sys_enter_recvfrom", "syscalls:sys_enter_writev",
      "syscalls:sys_enter_write", "syscalls:sys_enter_sendto", "syscalls:sys_enter_epoll_ctl",
      "syscalls:sys_enter_clock_gettime", "syscalls:sys_enter_accept4", "syscalls:sys_enter_madvise",
      "sched:sched_switch"]


def stat_split(pid):
    """(user s, system s, minor faults) of one process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) / sysinfo.CLK_TCK, int(rest[12]) / sysinfo.CLK_TCK, int(rest[7])
    except OSError:
        return 0.0, 0.0, 0


def tree_split(root):
    return {p: stat_split(p) for p in sysinfo.process_tree([root])}


def worker_pid(root, name):
    """The busiest-to-be process: kingx's worker / nginx's worker (by command line)."""
    for p in sysinfo.process_tree([root]):
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            comm = open(f"/proc/{p}/comm").read().strip()
        except OSError:
            continue
        if name == "nginx" and "worker process" in cmd:
            return p
        if name == "kingx" and comm == "kingx-worker":
            return p
    return None


def run_cell(label, root, wpid, port, prefix, conns, seconds, record_dir=None):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", LUA,
            f"http://127.0.0.1:{port}/", "--", "keyp=k", "nkeys=1000000", "size=100", "dist=uniform",
            f"get_prefix={prefix}", "get_suffix=", "putfrac=0"]
    load0 = os.getloadavg()[0]
    before = tree_split(root)
    t0 = time.monotonic()
    wrk = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.0)
    win = max(1.0, seconds - 2.0)
    pst = subprocess.run(["perf", "stat", "-x,", "-e", ",".join(TP), "-p", str(wpid), "--", "sleep", str(win)],
                         capture_output=True, text=True, timeout=win + 30)
    rec = None
    out, _ = wrk.communicate(timeout=seconds + 60)
    wall = time.monotonic() - t0
    after = tree_split(root)
    counts = {}
    for line in pst.stderr.splitlines():
        parts = line.split(",")
        if len(parts) >= 3 and parts[0].strip().isdigit():
            counts[parts[2]] = int(parts[0])
    rps = None
    reqs = None
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        if "requests in" in line:
            reqs = int(line.split()[0])
    if "Non-2xx" in out:
        print(f"# {label} c={conns}: non-2xx answers!", file=sys.stderr)
    ut = sum(after[p][0] - before.get(p, (0, 0, 0))[0] for p in after)
    st = sum(after[p][1] - before.get(p, (0, 0, 0))[1] for p in after)
    wut = after.get(wpid, (0, 0, 0))[0] - before.get(wpid, (0, 0, 0))[0]
    wst = after.get(wpid, (0, 0, 0))[1] - before.get(wpid, (0, 0, 0))[1]
    wflt = after.get(wpid, (0, 0, 0))[2] - before.get(wpid, (0, 0, 0))[2]
    # answers in the perf window: one writev per answer for both servers (closed loop)
    answers = counts.get("syscalls:sys_enter_writev", 0) + counts.get("syscalls:sys_enter_sendto", 0) + \
        counts.get("syscalls:sys_enter_write", 0)
    per = {k.split(":")[1].replace("sys_enter_", ""): round(v / answers, 3) for k, v in counts.items()} if answers else {}
    res = {"server": label, "conns": conns, "rps": rps, "requests": reqs, "load1": load0,
           "cpu_us_per_get": round((ut + st) / reqs * 1e6, 3) if reqs else None,
           "user_us_per_get": round(ut / reqs * 1e6, 3) if reqs else None,
           "sys_us_per_get": round(st / reqs * 1e6, 3) if reqs else None,
           "worker_user_us": round(wut / reqs * 1e6, 3) if reqs else None,
           "worker_sys_us": round(wst / reqs * 1e6, 3) if reqs else None,
           "worker_minflt_per_get": round(wflt / reqs, 4) if reqs else None,
           "per_answer": per, "answers_in_window": answers,
           "gets_per_wakeup": round(answers / max(1, counts.get("syscalls:sys_enter_epoll_wait", 0) +
                                                 counts.get("syscalls:sys_enter_epoll_pwait", 0)), 2)}
    return res


def perf_record(label, wpid, port, prefix, conns, seconds, out_dir):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", LUA,
            f"http://127.0.0.1:{port}/", "--", "keyp=k", "nkeys=1000000", "size=100", "dist=uniform",
            f"get_prefix={prefix}", "get_suffix=", "putfrac=0"]
    wrk = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.0)
    data = os.path.join(out_dir, f"perf-{label}-c{conns}.data")
    subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4999", "-g", "-o", data, "-p", str(wpid),
                    "--", "sleep", str(max(1, seconds - 2))], capture_output=True, timeout=seconds + 60)
    wrk.communicate(timeout=seconds + 60)
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "sym", "--stdio", "-g", "none",
                          "--percent-limit", "0.4"], capture_output=True, text=True, timeout=300)
    with open(os.path.join(out_dir, f"perf-{label}-c{conns}.txt"), "w") as f:
        f.write(rep.stdout)
    os.unlink(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kingx", required=True, help="label=binary[,label=binary]")
    ap.add_argument("--template", required=True)
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--nginx", action="store_true")
    ap.add_argument("--perf-record", help="directory: perf record (cpu-clock, -g) of each worker per conns, once")
    ap.add_argument("--extra-arg", action="append", default=[], help="label:arg for one kingx label")
    a = ap.parse_args()
    sysinfo.raise_fd_limit()
    work = tempfile.mkdtemp(prefix="getc1k-diag-")
    servers = []
    try:
        for item in a.kingx.split(","):
            label, binary = item.split("=", 1)
            d = os.path.join(work, label)
            data = kingx.copy_data(a.template, os.path.join(d, "data"))
            p, port = kingx.start(binary, d, data, {"model": "event", "workers": 1, "accept": "reuseport"},
                                  "none", 120)
            time.sleep(0.5)
            servers.append((label, p, port, "/v1/kv/", worker_pid(p.pid, "kingx")))
        if a.nginx:
            p, port = peers.start_nginx(os.path.join(work, "nginx"), 1)
            time.sleep(0.5)
            servers.append(("nginx", p, port, "/r/", worker_pid(p.pid, "nginx")))
        conns = [int(c) for c in a.conns.split(",")]
        for label, p, port, prefix, w in servers:
            print(f"# {label}: root {p.pid} worker {w}", file=sys.stderr)
        if a.perf_record:
            os.makedirs(a.perf_record, exist_ok=True)
            for c in conns:
                for label, p, port, prefix, w in servers:
                    perf_record(label, w, port, prefix, c, a.seconds, a.perf_record)
        for r in range(a.rounds):
            order = servers[r % len(servers):] + servers[:r % len(servers)]
            for c in conns:
                for label, p, port, prefix, w in order:
                    res = run_cell(label, p.pid, w, port, prefix, c, a.seconds)
                    res["round"] = r + 1
                    print(json.dumps(res), flush=True)
    finally:
        for label, p, *_ in servers:
            p.stop(signal.SIGTERM if label == "nginx" else signal.SIGQUIT, timeout_s=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
