import http.client, random, sys, time, os, signal
port, admin, master = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
r = random.Random(5)
def c(p=port): return http.client.HTTPConnection("127.0.0.1", p, timeout=30)
h = c()
for i in range(200):
    n = [0, 100, 300, 2000, 70000, (1 << 20) + 7][i % 6]
    h.request("PUT", f"/v1/kv/k{i % 40}", body=r.randbytes(n) if i % 2 else b"z" * n); h.getresponse().read()
    h.request("GET", f"/v1/kv/k{i % 40}"); h.getresponse().read()
    h.request("HEAD", f"/v1/kv/k{i % 40}"); h.getresponse().read()
for i in range(0, 40, 3):
    h.request("DELETE", f"/v1/kv/k{i}"); h.getresponse().read()
h.request("GET", "/v1/kv/?limit=5"); rr = h.getresponse(); rr.read(); print("list", rr.status)
h.request("GET", "/metrics"); h.getresponse().read()
a = c(admin); a.request("GET", "/admin/backup"); resp = a.getresponse(); print("backup", resp.status, len(resp.read()))
a = c(admin); a.request("POST", "/admin/compact"); print("compact", a.getresponse().status)
time.sleep(2)
os.kill(master, signal.SIGHUP); time.sleep(2)
os.kill(master, signal.SIGUSR1); time.sleep(1)
h = c()
for i in range(50):
    h.request("PUT", f"/v1/kv/z{i}", body=b"x" * 5000); h.getresponse().read()
    h.request("GET", f"/v1/kv/z{i}"); h.getresponse().read()
print("done")
