import os, sys, time, subprocess, socket, http.client, shutil, selectors, collections
sys.path.insert(0, "/work/wt/mem/tests/blackbox")
from kingx_harness import free_port, proc_stat, all_pids
# usage: python3 workers2_by_mapping.py KINGX DATA_DIR (copied, never changed): a 2-worker event server,
# 10,000 keep-alive GETs of key k1 held 3 s; per-mapping RSS growth of the two workers, summed.
BIN, SRC = sys.argv[1], sys.argv[2]
D = f"/tmp/mem-w2-{os.getpid()}"
shutil.copytree(SRC, D)
port = free_port()
p = subprocess.Popen([BIN, "--listen", f"127.0.0.1:{port}", "--data", D, "--workers", "2", "--accept", "reuseport", "--sync", "always",
                      "--access-log", "off", "--max-connections", "19000", "--error-log", D + ".err"])
for _ in range(200):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2); c.request("GET", "/readyz")
        if c.getresponse().status == 200: break
    except OSError: pass
    time.sleep(0.05)
time.sleep(4)
workers = [pid for pid in all_pids() if proc_stat(pid) and proc_stat(pid)[1] == p.pid and proc_stat(pid)[0] == "kingx-worker"]
def maps(pid):
    out = collections.Counter(); cur = None
    for l in open(f"/proc/{pid}/smaps"):
        f = l.split()
        if len(f) >= 5 and "-" in f[0] and not f[0].endswith(":"):
            name = " ".join(f[5:]) or "[anon]"
            cur = ("text " if "x" in f[1] else f[1] + " ") + os.path.basename(name)
        elif f[0] == "Rss:":
            out[cur] += int(f[1])
    return out
a = {w: maps(w) for w in workers}
socks = []
req = b"GET /v1/kv/k1 HTTP/1.1\r\nHost: x\r\n\r\n"
for i in range(10000):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(req); socks.append(s)
for s in socks:
    s.settimeout(10); s.recv(4096)
time.sleep(3)
b = {w: maps(w) for w in workers}
tot = collections.Counter()
for w in workers:
    for k in b[w]:
        d = b[w][k] - a[w].get(k, 0)
        if d: tot[k] += d
for k, v in tot.most_common(12): print(f"{v:6d} KB  {k}")
print("sum", sum(tot.values()))
for s in socks: s.close()
p.terminate(); p.wait(); shutil.rmtree(D)
