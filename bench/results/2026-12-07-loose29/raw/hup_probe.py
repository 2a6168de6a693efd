"""HUP while a worker is at its descriptor cap (probe, not a test).
usage: hup_probe.py KINGX [kingx args...]. One worker at ulimit -n 256; 200 silent
connections (past the cap: the rest wait in the backlog), a busy keep-alive client;
then HUP x3 while a client makes fresh-connection GETs and the busy one goes on.
Prints what failed, descriptor counts, log lines with EMFILE/error."""
import os, signal, sys, time, threading
sys.path.insert(0, "tests/blackbox")
os.environ["KINGX_BIN"] = sys.argv[1]
from kingx_harness import Conn, LimitedServer, http, key_path, open_descriptors, ConnectionClosed
args = sys.argv[2:]
S = LimitedServer(256, 256, "--workers", "1", *args)
S.start()
try:
    for i in range(20):
        http(S.port, "PUT", key_path(f"k{i}"), b"v" * 100)
    flood = [Conn(S.port, timeout=120) for _ in range(200)]
    time.sleep(2)
    w0 = S.workers()
    print("before HUP: workers", w0, {p: open_descriptors(p) for p in w0}, "master", open_descriptors(S.pid))
    stop = False
    results = {"fresh_ok": 0, "fresh_fail": [], "busy_ok": 0, "busy_fail": []}
    def fresh():
        while not stop:
            t0 = time.monotonic()
            try:
                r = http(S.port, "GET", key_path("k1"), timeout=30)
                if r.status == 200: results["fresh_ok"] += 1
                else: results["fresh_fail"].append((round(time.monotonic() - t0, 2), r.status))
            except (OSError, ConnectionClosed) as e:
                results["fresh_fail"].append((round(time.monotonic() - t0, 2), repr(e)[:80]))
            time.sleep(0.05)
    def busy():
        c = Conn(S.port, timeout=30)
        while not stop:
            try:
                r = c.request("GET", key_path("k2"))
                if r.status == 200: results["busy_ok"] += 1
                else: results["busy_fail"].append(r.status)
            except (OSError, ConnectionClosed) as e:
                results["busy_fail"].append(repr(e)[:80])
                c.close(); c = Conn(S.port, timeout=30)
            time.sleep(0.05)
    ts = [threading.Thread(target=fresh), threading.Thread(target=busy)]
    for t in ts: t.start()
    time.sleep(1)
    for n in range(3):
        S.signal(signal.SIGHUP)
        time.sleep(4)
        ws = S.workers()
        print(f"after HUP {n+1}: workers {ws}", {p: open_descriptors(p) for p in ws}, "master", open_descriptors(S.pid))
    time.sleep(3)
    stop = True
    for t in ts: t.join(60)
    print(results)
    logs = S.logs(limit=400000)
    for l in logs.splitlines():
        if "Too many" in l or "[error]" in l or "[alert]" in l or "EMFILE" in l or "reload" in l:
            print("LOG", l[:300])
finally:
    S.cleanup()
