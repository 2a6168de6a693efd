"""Probe: metrics stay monotonic across HUP and worker kill -9; /readyz reasons."""
import json, os, re, signal, sys, time, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, Conn, http, key_path, wait_for, metric
work = tempfile.mkdtemp(prefix="audit-metrics-", dir="/tmp")
conf = os.path.join(work, "kingx.json")
json.dump({"workers": 2, "storage_timeout_ms": 2000}, open(conf, "w"))
s = Server(["--config", conf] + sys.argv[1:], workdir=work); s.start()
def m(name):
    body = http(s.port, "GET", "/metrics").body.decode()
    tot = 0.0
    for l in body.splitlines():
        if l.startswith(name + "{") or l.startswith(name + " "):
            tot += float(l.rsplit(" ", 1)[1])
    return tot
names = ["kingx_http_requests_total", "kingx_http_responses_total", "kingx_http_sent_bytes_total",
         "kingx_http_connections_opened_total", "kingx_writer_records_total", "kingx_http_request_duration_seconds_count"]
with Conn(s.port) as c:
    for i in range(200):
        c.request("PUT", key_path(f"k{i}"), b"x" * 100); c.request("GET", key_path(f"k{i}"))
before = {n: m(n) for n in names}
print("before", before)
old = set(s.workers())
s.signal(signal.SIGHUP)
wait_for(lambda: len(s.workers()) == 2 and not set(s.workers()) & old, 30, "new workers, old gone")
after = {n: m(n) for n in names}
print("after HUP", after)
print("HUP decreased:", [n for n in names if after[n] < before[n]])
w = s.workers()[0]; os.kill(w, signal.SIGKILL)
wait_for(lambda: len(s.workers()) == 2 and w not in s.workers(), 30, "respawn")
after2 = {n: m(n) for n in names}
print("kill -9 worker decreased:", [n for n in names if after2[n] < after[n]])
# readyz reasons
wpid = s.children("kingx-writer")[0][0]
os.kill(wpid, signal.SIGSTOP)
time.sleep(3)
r = http(s.port, "GET", "/readyz"); print("writer stopped:", r.status, r.body[:250])
print("heartbeat age", metric(s.port, "kingx_writer_heartbeat_age_seconds"))
os.kill(wpid, signal.SIGCONT); time.sleep(1.5)
r = http(s.port, "GET", "/readyz"); print("writer continued:", r.status)
os.kill(wpid, signal.SIGKILL)
t0 = time.time(); seen = set()
while time.time() - t0 < 5:
    r = http(s.port, "GET", "/readyz")
    seen.add((r.status, r.body[:160]))
    if r.status == 200 and len(seen) > 1: break
    time.sleep(0.02)
print("after writer kill -9:", seen)
s.signal(signal.SIGQUIT)
try:
    r = http(s.port, "GET", "/readyz", timeout=3); print("during QUIT:", r.status, r.body[:200])
except Exception as e:
    print("during QUIT: no answer", repr(e)[:80])
s.cleanup()
