import os, socket, subprocess, sys, time
sys.path.insert(0, '/work/wt/rss/bench')
import restart_time as rt
binary, data = sys.argv[1], sys.argv[2]
port = rt.free_port()
proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "2"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
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
    while metric("kingx_keyspace_ready") != 1.0 and time.time() - t0 < 300: time.sleep(0.2)
    cur = None; out = []
    for l in open(f"/proc/{w}/smaps"):
        p = l.split()
        if p and '-' in p[0] and ':' not in p[0]: cur = p[5] if len(p) >= 6 else '[anon]'
        elif p and p[0] == 'Rss:' and int(p[1]) > 10000: out.append((int(p[1]), cur))
    for r, n in sorted(out, reverse=True)[:6]: print(r, 'KiB', n)
finally:
    proc.terminate(); proc.wait(timeout=120)
