"""Probe: a HUP lowering --workers (reuseport) under a load of fresh connections."""
import json, os, signal, sys, threading, time, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, Conn, http, key_path, wait_for, ConnectionClosed
FROM, TO = int(os.environ.get("FROM", "2")), int(os.environ.get("TO", "1"))
work = tempfile.mkdtemp(prefix="audit-shrink-", dir="/tmp")
conf = os.path.join(work, "kingx.json")
def write(cfg):
    with open(conf + ".new", "w") as f: json.dump(cfg, f)
    os.rename(conf + ".new", conf)
write({"workers": FROM})
s = Server(["--config", conf] + sys.argv[1:], workdir=work); s.start()
http(s.port, "PUT", key_path("k"), b"v")
stop = threading.Event(); res = {"ok": 0, "lost": []}
def client():
    while not stop.is_set():
        try:
            r = http(s.port, "GET", key_path("k"), timeout=10)
            if r.status == 200: res["ok"] += 1
            else: res["lost"].append(r.status)
        except (OSError, ConnectionClosed) as e:
            res["lost"].append(repr(e)[:50])
ths = [threading.Thread(target=client) for _ in range(4)]
for t in ths: t.start()
for i in range(int(os.environ.get("HUPS", "3"))):
    time.sleep(1.0)
    write({"workers": TO if i % 2 == 0 else FROM}); s.signal(signal.SIGHUP)
time.sleep(3)
stop.set()
for t in ths: t.join()
print(f"workers {FROM}<->{TO}: {res['ok']} GETs on fresh connections answered, lost {len(res['lost'])}: {res['lost'][:4]}")
s.cleanup()
