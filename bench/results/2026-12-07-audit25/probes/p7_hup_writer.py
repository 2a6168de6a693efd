"""Probe: a HUP that changes settings the writer process uses (--staging-bytes,
--backup-max-ms, --storage-timeout-ms) but no engine setting. Do they take effect?"""
import json, os, signal, sys, time, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, http, key_path, metric, wait_for

work = tempfile.mkdtemp(prefix="audit-hup-", dir="/tmp")
conf = os.path.join(work, "kingx.json")
def write(cfg):
    with open(conf + ".new", "w") as f: json.dump(cfg, f)
    os.rename(conf + ".new", conf)
cfg = {"staging_bytes": "2M", "max_value_bytes": "2M", "workers": 1, "compression_level": 0}
write(cfg)
s = Server(["--config", conf], workdir=work)
try:
    s.start()
    v = os.urandom(3 << 20)
    r = http(s.port, "PUT", key_path("big"), v[: (2 << 20)])
    print("2 MiB PUT with staging 2M ->", r.status)
    cfg.update(staging_bytes="8M", max_value_bytes="8M"); write(cfg)
    old = set(s.workers())
    s.signal(signal.SIGHUP)
    wait_for(lambda: set(s.workers()) and not (set(s.workers()) & old), 30, "new workers")
    time.sleep(1)
    r = http(s.port, "PUT", key_path("big3"), v, timeout=60)
    print("after HUP staging 8M, max 8M: 3 MiB PUT ->", r.status, r.body[:300])
    r = http(s.port, "GET", key_path("big3"))
    print("GET ->", r.status, len(r.body), r.body == v)
    print(open(s.error_log).read()[-1500:])
finally:
    s.cleanup()
