# usage: repro503.py WORKDIR KINGX NKEYS POLL_S   The template build's preload (wrk -t1 -c64, preload.lua)
# with a poller GETting the not-yet-written last key (fresh connection each time, as the harness does),
# every POLL_S seconds; prints every answer that is neither 404 nor 200, with its body and timing,
# and the index/metrics lines at the end.
import json, os, signal, subprocess, sys, threading, time, http.client
sys.path.insert(0, "/work/wt/avail/bench")
from harness import procs
w, kb, n, poll_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
os.makedirs(w, exist_ok=True)
data = os.path.join(w, "data"); os.makedirs(data, exist_ok=True)
port = procs.free_port()
argv = [kb, "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "1", "--model", "event",
        "--sync", "none", "--access-log", os.path.join(w, "access.log"), "--error-log", os.path.join(w, "error.log"),
        "--max-connections", "19000", "--accept", "reuseport"]
p = procs.Proc("kingx", argv, os.path.join(w, "kingx.log"))
procs.wait_http_ok(port, "/readyz", 60, p)  # the harness's start: 0.1 s polls
wrk = subprocess.Popen(["wrk", "-t1", "-c64", "-d300s", "--timeout", "30s", "-s",
                        "/work/wt/avail/bench/lua/preload.lua", f"http://127.0.0.1:{port}/", "--",
                        "prefix=/v1/kv/", "keyp=k", f"nkeys={n}", "size=100"],
                       stdout=open(os.path.join(w, "wrk.txt"), "w"), stderr=subprocess.STDOUT)
stats = {}
odd = []
t0 = time.monotonic()
last = f"/v1/kv/k{n - 1}"
try:
    while wrk.poll() is None and time.monotonic() - t0 < 300:
        time.sleep(poll_s)
        a = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", last)
        r = c.getresponse(); body = r.read(); c.close()
        b = time.monotonic()
        stats[r.status] = stats.get(r.status, 0) + 1
        if r.status not in (200, 404):
            odd.append({"t": round(a - t0, 3), "lat_ms": round((b - a) * 1000, 1), "status": r.status,
                        "body": body.decode(errors="replace")})
            print("ODD", json.dumps(odd[-1]), flush=True)
        if r.status == 200:
            break
finally:
    if wrk.poll() is None:
        wrk.send_signal(signal.SIGINT)
    wrk.wait(timeout=30)
    st, m = procs.http_request(port, "GET", "/metrics")
    ml = [l for l in m.decode().splitlines() if not l.startswith("#") and ("index" in l or "busy" in l or "read_fail" in l or "growth" in l)]
    p.stop(signal.SIGQUIT, timeout_s=60)
print("RESULT", json.dumps({"stats": stats, "odd": odd, "secs": round(time.monotonic() - t0, 1), "metrics": ml}), flush=True)
print("503_LINES", [l.strip() for l in open(os.path.join(w, "access.log")) if "\" 503 " in l], flush=True)
subprocess.run(["rm", "-rf", data, os.path.join(w, "access.log")])
