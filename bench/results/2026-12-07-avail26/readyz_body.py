# usage: readyz_body.py WORKDIR KINGX RUNS   starts kingx on an empty data directory (the template build's flags),
# polls /readyz every 5 ms from the moment it listens until 200 and prints each 503's body, and a GET of an
# absent key answered in that window.
import os, signal, shutil, sys, time, http.client
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from harness import procs
w, kb, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(runs):
    d = os.path.join(w, f"b{i}"); shutil.rmtree(d, ignore_errors=True); os.makedirs(d + "/data")
    port = procs.free_port()
    p = procs.Proc("kingx", [kb, "--listen", f"127.0.0.1:{port}", "--data", d + "/data", "--workers", "1",
                             "--model", "event", "--sync", "none", "--access-log", "off",
                             "--error-log", d + "/error.log", "--accept", "reuseport"], d + "/kingx.log")
    seen, t0 = [], time.monotonic()
    while time.monotonic() - t0 < 30:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/readyz"); r = c.getresponse(); body = r.read(); c.close()
        except OSError:
            time.sleep(0.005); continue
        if r.status == 200:
            break
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/v1/kv/absent"); g = c.getresponse(); gbody = g.read(); c.close()
        seen.append((round(time.monotonic() - t0, 3), r.status, body.decode(), g.status, gbody.decode()))
        time.sleep(0.005)
    p.stop(signal.SIGQUIT, timeout_s=60)
    print(f"run {i}: ready after {time.monotonic() - t0:.3f}s; before it: {seen}", flush=True)
    shutil.rmtree(d, ignore_errors=True)
