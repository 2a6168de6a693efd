import os, re, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../tests/blackbox"))
from kingx_harness import Server, http
def metrics(port):
    body = http(port, "GET", "/metrics", timeout=30).body.decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+) (\S+)$", body, re.M)}
def files(d):
    return {f: os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith((".kxd", ".hint"))}
s = Server(["--workers", "1", "--segment-bytes", "1M", "--compaction-dead-ratio", "0.99", "--compression-level", "0", "--log-level", "debug"] + sys.argv[1:], admin=True)
s.start()
try:
    for i in range(60):
        http(s.port, "PUT", "/v1/kv/k%d" % i, os.urandom(100 << 10))
    for i in range(0, 60, 2):
        http(s.port, "DELETE", "/v1/kv/k%d" % i)
    time.sleep(0.5)
    a = metrics(s.port); fa = files(s.data_dir)
    r = http(s.admin_port, "POST", "/admin/compact", timeout=60)
    time.sleep(3)
    b = metrics(s.port); fb = files(s.data_dir)
    d = lambda k: b.get(k, 0) - a.get(k, 0)
    new = {f: n for f, n in fb.items() if f not in fa}
    print("passes", d("kingx_compaction_passes_total"), "reclaimed", d("kingx_compaction_reclaimed_bytes_total"), "written", d("kingx_compaction_written_bytes_total"), "ondisk", sum(new.values()))
    if d("kingx_compaction_passes_total") != 1:
        print("\n".join(l for l in s.logs().splitlines() if "compaction" in l))
finally:
    s.stop()
