#!/usr/bin/env python3
"""Start kingx on DATA, wait for /readyz 200, then for kingx_keyspace_ready 1 (bounded: 300 s),
print the writer's VmHWM/VmRSS/RssFile at ready and when the key view is complete. Stops the server by PID."""
import os, socket, subprocess, sys, time
sys.path.insert(0, '/work/wt/rss/bench')
import restart_time as rt
binary, data = sys.argv[1], sys.argv[2]
port = rt.free_port()
proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "2"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
def status(pid):
    out = {}
    for l in open(f"/proc/{pid}/status"):
        k = l.split(":")[0]
        if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"): out[k] = l.split()[1]
    return out
def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return round((int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"), 2)
def metric(name):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            buf = b""
            while True:
                d = s.recv(65536)
                if not d: break
                buf += d
        for l in buf.decode(errors="replace").splitlines():
            if l.startswith(name + " "): return float(l.split()[1])
    except OSError:
        return None
try:
    t0 = time.time()
    while not rt.readyz(port) and time.time() - t0 < 300: time.sleep(0.01)
    w = rt.writer_pid(proc.pid)
    print("ready", round(time.time() - t0, 2), "cpu", cpu_s(w), status(w), flush=True)
    while metric("kingx_keyspace_ready") != 1.0 and time.time() - t0 < 300: time.sleep(0.2)
    print("keyspace_ready", round(time.time() - t0, 2), "cpu", cpu_s(w), status(w), "rebuilds", metric("kingx_keyspace_rebuilds_total"),
          "catch_ups", metric("kingx_keyspace_catch_ups_total"), flush=True)
finally:
    proc.terminate(); proc.wait(timeout=120)
