# Per-mapping RSS diff of every kingx process around N idle keep-alive connections.
import os, sys, socket, subprocess, time, tempfile, selectors, json
sys.path.insert(0, "/work/wt/putreg/bench")
from harness import procs, idle
bin_, workers, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tmp = tempfile.mkdtemp(prefix="idlemem-")
port = procs.free_port()
argv = [bin_, "--listen", f"127.0.0.1:{port}", "--data", tmp + "/data", "--workers", str(workers),
        "--model", "event", "--sync", "none", "--access-log", "off", "--max-connections", "19000", "--accept", "reuseport"]
p = procs.Proc("kingx", argv, tmp + "/kingx.log")
procs.wait_http_ok(port, "/readyz", 20, p)
for i in range(1000):
    procs.http_request(port, "PUT", f"/v1/kv/k{i}", body=b"x" * 100, timeout_s=10)
def tree(pid):
    out = [pid]
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            for c in open(f"/proc/{pid}/task/{t}/children").read().split():
                out += tree(int(c))
        except OSError: pass
    return out
pids = tree(p.popen.pid if hasattr(p, "popen") else p.pid)
def names(pid):
    return open(f"/proc/{pid}/cmdline").read().replace("\0", " ")[:60]
def smaps(pid):
    res = {}; cur = None
    for line in open(f"/proc/{pid}/smaps"):
        f = line.split()
        if "-" in f[0] and not f[0].endswith(":"):
            cur = (f[5] if len(f) > 5 else "[anon]") + " " + f[0]; res[cur] = [0, 0]
        elif f[0] == "Rss:": res[cur][0] = int(f[1])
        elif f[0] == "Pss:": res[cur][1] = int(f[1])
    return res
class I: pass
inst = I(); inst.port = port
time.sleep(1)
before = {pid: smaps(pid) for pid in pids}
socks, errs, answered, after, _, still = idle._hold(type("X", (), {"port": port, "server_pids": lambda self: pids, "backend_pids": lambda self: []})(), b"GET /v1/kv/k0 HTTP/1.1\r\nHost: x\r\n\r\n", n, 3.0, 15.0)
aft = {pid: smaps(pid) for pid in pids}
print("answered", answered, "open", still)
tot = 0; totp = 0
for pid in pids:
    print("pid", pid, names(pid))
    for k, v in aft[pid].items():
        b = before[pid].get(k, [0, 0])
        d = v[0] - b[0]; dp = v[1] - b[1]
        if d or dp:
            print(f"   {k[:90]:90s} rss {d:+6d} KiB pss {dp:+6d} KiB")
        tot += d; totp += dp
print(f"total rss {tot} KiB = {tot*1024/n:.0f} B/conn; pss {totp} KiB = {totp*1024/n:.0f} B/conn")
for s in socks: s.close()
p.stop()
