# usage: overwrite_probe.py KINGX NKEYS   (GETs beside constant overwrites of NKEYS keys; prints non-200s)
import http.client, subprocess, sys, time, socket, os, signal, tempfile
BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DATA = tempfile.mkdtemp(prefix="overwrite-probe-")
kbin, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
k = subprocess.Popen([kbin, "--listen", f"127.0.0.1:{port}", "--data", os.path.join(DATA, "data"), "--workers", "2", "--sync", "none", "--error-log", os.path.join(DATA, "err.log")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for i in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5); c.request("GET", "/readyz"); r = c.getresponse(); r.read()
            if r.status == 200: break
        except Exception: pass
        time.sleep(0.2)
    w = subprocess.Popen(["wrk", "-t1", "-c64", "-d40s", "-s", os.path.join(BENCH, "lua", "preload.lua"), f"http://127.0.0.1:{port}/", "--", "prefix=/v1/kv/", "keyp=k", f"nkeys={n}", "size=100"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while True:
        c.request("GET", f"/v1/kv/k{n-1}"); r = c.getresponse(); r.read()
        if r.status == 200: break
        time.sleep(0.05)
    t0 = time.time(); gets = 0; bad = {}
    while time.time() - t0 < 25:
        for i in range(0, n, max(1, n // 500)):
            c.request("GET", f"/v1/kv/k{i}"); r = c.getresponse(); body = r.read(); gets += 1
            if r.status != 200 or len(body) != 100:
                bad[r.status] = bad.get(r.status, 0) + 1
                if sum(bad.values()) <= 3: print("bad", i, r.status, body[:120], flush=True)
    print("gets", gets, "bad", bad, flush=True)
    w.send_signal(signal.SIGINT); w.wait()
finally:
    k.send_signal(signal.SIGQUIT); k.wait(timeout=60)
