#!/usr/bin/env python3
"""Where the worker's CPU goes in abuse.py's fd-exhaustion (or idle-10k) case: one server, a wrk GET
load alone then beside the abuse; during each phase perf stat of the worker (CPU and syscall counts)
and /metrics before/after. Usage: diag_fd.py BIN LABEL [fd|idle] [perf-record]"""
import os, subprocess, sys, tempfile, time, json, re
sys.path.insert(0, "/work/wt/putreg/bench")
from harness import procs

bin_, label = sys.argv[1], sys.argv[2]
case = sys.argv[3] if len(sys.argv) > 3 else "fd"
record = len(sys.argv) > 4
here = os.path.dirname(os.path.abspath(__file__))
tmp = tempfile.mkdtemp(prefix="abusefd-")
port = procs.free_port()
argv = [bin_, "--listen", f"127.0.0.1:{port}", "--data", tmp + "/data", "--workers", "1",
        "--error-log", tmp + "/error.log", "--model", "event"]
if case == "fd":
    argv = ["prlimit", "--nofile=2048:2048", "--"] + argv
os.makedirs(tmp + "/data")
p = procs.Proc("kingx", argv, tmp + "/stdout.log")
procs.wait_http_ok(port, "/readyz", 30, p)
procs.http_request(port, "PUT", "/v1/kv/small", body=b"v" * 100)
def worker():
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try: st = open(f"/proc/{pid}/stat").read()
            except OSError: continue
            comm = st[st.index("(") + 1:st.rindex(")")]
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            if ppid == p.pid and comm == "kingx-worker": return int(pid)
wp = worker()
EV = ["task-clock", "context-switches"] + [f"syscalls:sys_enter_{s}" for s in
      ("accept4", "close", "shutdown", "read", "write", "writev", "epoll_wait", "epoll_ctl", "poll", "setsockopt",
       "recvfrom", "getsockopt")]
def metrics():
    _, body = procs.http_request(port, "GET", "/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("#"): continue
        m = re.match(r"(kingx_http_(?:connections_opened_total|open_connections|requests_total|timeouts_total)[^ ]*) ([\d.e+]+)$", line)
        if m: out[m.group(1)] = float(m.group(2))
    return out
def phase(name, secs, with_abuse):
    wrk = subprocess.Popen(["wrk", "-t1", "-c50", f"-d{secs + 6}s", "--latency", f"http://127.0.0.1:{port}/v1/kv/small"],
                           stdout=subprocess.PIPE, text=True)
    ab = None
    time.sleep(0.5)
    if with_abuse:
        mode = "hog" if case == "fd" else "idle"
        a = [sys.executable, "/work/wt/putreg/bench/abuse_clients.py", mode, "--port", str(port),
             "--conns", "3048" if case == "fd" else "10000", "--seconds", str(secs + 20)]
        if mode == "idle": a += ["--path", "/v1/kv/small"]
        ab = subprocess.Popen(a, stdout=subprocess.PIPE, text=True)
    time.sleep(5)
    m0 = metrics()
    if record:
        subprocess.run(["perf", "record", "-g", "-o", f"{here}/perf-{label}-{name}.data", "-p", str(wp), "--",
                        "sleep", str(secs)], capture_output=True)
        ps = ""
    else:
        ps = subprocess.run(["perf", "stat", "-x,", "-e", ",".join(EV), "-p", str(wp), "--", "sleep", str(secs)],
                            capture_output=True, text=True).stderr
    m1 = metrics()
    out, _ = wrk.communicate()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
    if ab:
        ab.terminate(); ab.wait()
    counts = {}
    for line in ps.splitlines():
        f = line.split(",")
        if len(f) > 3 and f[0].replace(".", "").isdigit():
            counts[f[2].replace("syscalls:sys_enter_", "")] = float(f[0])
    reqs = m1.get("kingx_http_requests_total", 0)
    dm = {k: m1[k] - m0.get(k, 0) for k in m1}
    print(json.dumps({"label": label, "phase": name, "wrk_rps": float(rps), "perf": counts,
                      "metrics_delta": {k: v for k, v in dm.items() if v}, "load": os.getloadavg()[0]}))
    sys.stdout.flush()
try:
    phase("alone", 5, False)
    time.sleep(1)
    phase("abuse", 5, True)
    err = open(tmp + "/error.log").read().splitlines()
    print("error.log tail:", *err[-6:], sep="\n  ")
finally:
    p.stop()
