#!/usr/bin/env python3
"""README "When the disk fills": at most 200 statvfs a second while writes come, none while idle; one
error-log line per second counting refused writes; the database opens on a full disk; writes accepted
again with a warn line once room comes, no restart.
usage: p2_disk.py KINGX TMPFS_DIR (a small tmpfs, e.g. 16 MiB) [extra kingx args]"""
import os, socket, subprocess, sys, time, signal, http.client, re
B, FS = sys.argv[1], sys.argv[2]; extra = sys.argv[3:]
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
P = port(); data = os.path.join(FS, "data"); elog = "/tmp/audit5-p2-error.log"
if os.path.exists(elog): os.unlink(elog)
def start():
    pr = subprocess.Popen([B, "--listen", f"127.0.0.1:{P}", "--data", data, "--workers", "1", "--error-log", elog] + extra,
                          start_new_session=True)
    for _ in range(100):
        try:
            c = http.client.HTTPConnection("127.0.0.1", P, timeout=2); c.request("GET", "/healthz"); c.getresponse().read(); return pr
        except OSError: time.sleep(0.1)
    raise SystemExit("no start")
def req(m, path, body=None, c=None):
    c = c or http.client.HTTPConnection("127.0.0.1", P, timeout=10)
    c.request(m, path, body=body); r = c.getresponse(); return r.status, r.read()
def writer(pr):
    for l in os.popen(f"ps -o pid=,comm= --ppid {pr.pid}"):
        pid, comm = l.split()
        if "writer" in comm: return int(pid)
def strace_count(pid, secs, load=None):
    out = "/tmp/audit5-p2-strace.txt"
    st = subprocess.Popen(["strace", "-f", "-c", "-e", "trace=statfs,fstatfs", "-o", out, "-p", str(pid)],
                          stderr=subprocess.DEVNULL)
    time.sleep(0.5); t0 = time.time(); n = 0
    while time.time() - t0 < secs:
        if load: load(); n += 1
        else: time.sleep(0.05)
    st.send_signal(signal.SIGINT); st.wait()
    txt = open(out).read(); calls = 0
    for l in txt.splitlines():
        f = l.split()
        if f and f[-1] in ("statfs", "fstatfs"): calls += int(f[3]) if len(f) >= 6 else int(f[2])
    return calls, n, txt
pr = start(); time.sleep(1.0)
w = writer(pr)
calls, _, txt = strace_count(w, 3.0)
print(f"idle 3 s: statfs/fstatfs calls {calls}"); print(txt)
conn = http.client.HTTPConnection("127.0.0.1", P, timeout=10)
i = [0]
def put():
    i[0] += 1; req("PUT", f"/v1/kv/k{i[0] % 50}", b"v" * 100, conn)
calls, n, txt = strace_count(w, 3.0, put)
print(f"3 s of {n} PUTs: statfs/fstatfs calls {calls} ({calls/3:.0f}/s)"); print(txt)
# fill: 400 KB values until 507
codes = {}
big = os.urandom(400_000)
for k in range(200):
    s, _ = req("PUT", f"/v1/kv/big{k}", big, conn); codes[s] = codes.get(s, 0) + 1
    if s == 507: break
print("fill:", codes)
t0 = time.time(); refused = 0
while time.time() - t0 < 3.2:
    s, _ = req("PUT", "/v1/kv/more", big, conn); refused += s == 507; time.sleep(0.05)
time.sleep(1.2)
lines = open(elog).read().splitlines()
print(f"{refused} refused PUTs over 3.2 s; error log lines mentioning refused/full:")
for l in lines:
    if re.search(r"full|refus|507|space", l): print("  ", l)
s, body = req("GET", "/readyz"); print("readyz", s, body)
# stop, fill the rest, start again on a full disk
pr.send_signal(signal.SIGQUIT); pr.wait(30)
with open(os.path.join(FS, "filler"), "wb") as f:
    try:
        while True: f.write(b"\0" * 65536); f.flush()
    except OSError: pass
st = os.statvfs(FS); print("free after filler:", st.f_bavail * st.f_frsize)
pr = start(); time.sleep(1.0)
s, b = req("GET", "/v1/kv/big0"); print("full-disk start: GET big0", s, len(b))
s, b = req("GET", "/readyz"); print("readyz", s, b)
s, b = req("PUT", "/v1/kv/small", b"x"); print("PUT small", s)
os.unlink(os.path.join(FS, "filler"))
for k in range(10):  # delete to get above the reserve
    req("DELETE", f"/v1/kv/big{k}")
time.sleep(0.5)
t0 = time.time()
while time.time() - t0 < 5:
    s, b = req("PUT", "/v1/kv/small", b"x")
    if s in (201, 204): break
    time.sleep(0.1)
print("PUT after room", s, f"{time.time()-t0:.2f}s")
time.sleep(1.2)
print("warn lines:"); [print("  ", l) for l in open(elog).read().splitlines() if "[warn]" in l]
s, b = req("GET", "/readyz"); print("readyz", s, b)
pr.send_signal(signal.SIGQUIT); pr.wait(30)
