#!/usr/bin/env python3
"""Per-second timeline of one kingx (or nginx) under a wrk GET load with the fd-exhaustion hog (or
idle-10k) starting at t=ABUSE_AT: the worker's GETs per second (read syscalls), its CPU, the hog's
CPU, wrk's CPU, the machine's softirq+system share, accepts/closes per second.
Usage: timeline.py BIN LABEL [fd|idle] [seconds] [abuse_at]"""
import os, subprocess, sys, tempfile, time, json
sys.path.insert(0, "/work/wt/putreg/bench")
from harness import procs

bin_, label = sys.argv[1], sys.argv[2]
case = sys.argv[3] if len(sys.argv) > 3 else "fd"
total = int(sys.argv[4]) if len(sys.argv) > 4 else 20
abuse_at = float(sys.argv[5]) if len(sys.argv) > 5 else 6
tmp = tempfile.mkdtemp(prefix="abusefd-")
os.chmod(tmp, 0o755)
port = procs.free_port()
argv = [bin_, "--listen", f"127.0.0.1:{port}", "--data", tmp + "/data", "--workers", "1",
        "--error-log", tmp + "/error.log", "--model", "event"]
if case == "fd":
    argv = ["prlimit", "--nofile=2048:2048", "--"] + argv
os.makedirs(tmp + "/data")
path = "/v1/kv/small"
if bin_ == "nginx":  # nginx as abuse.py starts it, serving the same 100 bytes from a file
    from harness import peers
    p, port = peers.start_nginx(tmp + "/ng", 1, reuseport=True, nofile=2048 if case == "fd" else None,
                                static_files={"v100.txt": b"v" * 100}, error_level="error", tcp_nopush=False)
    path = "/s/v100.txt"
else:
    p = procs.Proc("kingx", argv, tmp + "/stdout.log")
    procs.wait_http_ok(port, "/readyz", 30, p)
    procs.http_request(port, "PUT", "/v1/kv/small", body=b"v" * 100)
abuse_port, other = port, None
def children(ppid):
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try: st = open(f"/proc/{pid}/stat").read()
            except OSError: continue
            if int(st[st.rindex(")") + 2:].split()[1]) == ppid: out.append((int(pid), st[st.index("(") + 1:st.rindex(")")]))
    return out
wp = [pid for pid, c in children(p.pid) if c in ("kingx-worker", "nginx")][0]
def cpu(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / 100.0
    except OSError: return 0.0
def sysstat():
    f = open("/proc/stat").readline().split()[1:]
    v = list(map(int, f))
    return v  # user nice system idle iowait irq softirq steal
ev = "task-clock,syscalls:sys_enter_read,syscalls:sys_enter_recvfrom,syscalls:sys_enter_accept4,syscalls:sys_enter_close,syscalls:sys_enter_epoll_wait"
perf = subprocess.Popen(["perf", "stat", "-I", "1000", "-x,", "-e", ev, "-p", str(wp)], stderr=subprocess.PIPE, text=True)
rec = None
if os.environ.get("REC"):
    rec = subprocess.Popen(["perf", "record", "-g", "-o", os.environ["REC"], "-p", str(wp)], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
time.sleep(0.3)
wrk = subprocess.Popen(["wrk", "-t1", "-c50", f"-d{total}s", f"http://127.0.0.1:{port}{path}"],
                       stdout=subprocess.PIPE, text=True)
t0 = time.monotonic()
ab = None
rows = []
prev = None
while time.monotonic() - t0 < total:
    if ab is None and time.monotonic() - t0 >= abuse_at:
        mode = "hog" if case == "fd" else "idle"
        a = [sys.executable, "/work/wt/putreg/bench/abuse_clients.py", mode, "--port", str(abuse_port),
             "--conns", "3048" if case == "fd" else "10000", "--seconds", str(total + 20)]
        if mode == "idle": a += ["--path", path]
        ab = subprocess.Popen(a, stdout=subprocess.PIPE, text=True)
    s = (time.monotonic(), cpu(wp), cpu(wrk.pid), cpu(ab.pid) if ab else 0.0, sysstat(), cpu(p.pid))
    if prev:
        dt = s[0] - prev[0]
        d = [a - b for a, b in zip(s[4], prev[4])]
        tot = sum(d) or 1
        rows.append({"t": round(s[0] - t0, 1), "worker": round((s[1] - prev[1]) / dt, 2), "wrk": round((s[2] - prev[2]) / dt, 2),
                     "abuser": round((s[3] - prev[3]) / dt, 2),
                     "sys%": round(100 * d[2] / tot), "softirq%": round(100 * d[6] / tot), "idle%": round(100 * d[3] / tot)})
    prev = s
    time.sleep(1)
wrk.communicate()
perf.send_signal(2)
if rec: rec.send_signal(2); rec.wait()
err = perf.communicate()[1]
per = {}
for line in err.splitlines():
    f = line.split(",")
    if len(f) > 4:
        try: t = round(float(f[0]))
        except ValueError: continue
        per.setdefault(t, {})[f[3].replace("syscalls:sys_enter_", "")] = f[1]
if ab: ab.terminate(); ab.wait()
p.stop()
if other: other.stop()
print(f"# {label} elsewhere={bool(other)} case={case} abuse at t={abuse_at}s load {os.getloadavg()}")
def rate(d):
    return float(d.get("read", 0) or 0) + float(d.get("recvfrom", 0) or 0)
print("t  worker_cores wrk abuser sys% softirq% idle% | perf second: reads accepts closes task-clock")
for r, (t, d) in zip(rows, sorted(per.items())):
    print(r["t"], r["worker"], r["wrk"], r["abuser"], r["sys%"], r["softirq%"], r["idle%"], "|", t, rate(d), d.get("accept4"), d.get("close"), d.get("task-clock"))
secs = sorted(per.items())
def mean(a, b):
    v = [rate(d) for t, d in secs if a < t <= b]
    return sum(v) / len(v) if v else 0
before, build, steady = mean(1, abuse_at), mean(abuse_at, abuse_at + 4), mean(abuse_at + 4, total - 1)
print(f"SUMMARY {label} {case}: requests/s before {before:.0f}, first 4 s of the abuse {build:.0f} ({build / before:.3f}), "
      f"after {steady:.0f} ({steady / before:.3f}); load {os.getloadavg()[0]:.1f}")
