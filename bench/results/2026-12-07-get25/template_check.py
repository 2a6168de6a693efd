# usage: template_check.py WORKDIR KINGX   (the template build path, then GETs of k0..k1999 and a closer look at any miss)
# The template build's path (bench/harness/kingx: start, _preload_small, the check), with a closer look
# when the check fails: is the key missing for good or for a moment, and which others are?
import sys, os, time, signal
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from harness import kingx, scenarios, procs
w = sys.argv[1]; kb = sys.argv[2]; os.makedirs(w, exist_ok=True)
ds = scenarios.Dataset(1000000, 0, 0)
data = os.path.join(w, "data"); os.makedirs(data, exist_ok=True)
p, port = kingx.start(kb, os.path.join(w, "srv"), data, {"model": "event", "workers": 1, "accept": "reuseport"}, "none", kingx.ready_timeout(ds))
try:
    secs = kingx._preload_small(port, ds, w)
    t0 = time.monotonic()
    bad = []
    for key in ["k0", "k999999", "k500000"] + [f"k{i}" for i in range(1, 2000)]:
        st, body = procs.http_request(port, "GET", f"/v1/kv/{key}", timeout_s=30)
        if st != 200 or len(body) != 100: bad.append((key, st, round(time.monotonic() - t0, 3), body[:200]))
    print("preload", round(secs, 1), "bad", len(bad), bad[:5], flush=True)
    if bad:
        for delay in (0.5, 2, 5):
            time.sleep(delay)
            again = [(k, procs.http_request(port, "GET", f"/v1/kv/{k}", timeout_s=30)[0]) for k, *_ in bad[:20]]
            print("after", delay, "s:", again, flush=True)
        m = procs.http_request(port, "GET", "/metrics", timeout_s=30)[1].decode()
        print("\n".join(l for l in m.splitlines() if "corrupt" in l or "read_fail" in l or "index" in l or "keys " in l)[:3000])
finally:
    p.stop(signal.SIGQUIT, timeout_s=60)
