import json, os, signal, socket, sys, time, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, http, key_path, metric, wait_for, build_request

work = tempfile.mkdtemp(prefix="audit-hup2-", dir="/tmp")
conf = os.path.join(work, "kingx.json")
def write(cfg):
    with open(conf + ".new", "w") as f: json.dump(cfg, f)
    os.rename(conf + ".new", conf)
cfg = {"workers": 1, "segment_bytes": "1M", "admin_listen": None}
s = Server(["--config", conf], workdir=work, admin=True)
cfg = {"workers": 1, "segment_bytes": "1M"}
write(cfg)
try:
    s.start()
    for i in range(100):
        http(s.port, "PUT", key_path(f"k{i}"), os.urandom(300000))
    cfg.update(backup_max_ms=1000, storage_timeout_ms=1000); write(cfg)
    old = set(s.workers())
    s.signal(signal.SIGHUP)
    wait_for(lambda: set(s.workers()) and not (set(s.workers()) & old), 30, "new workers")
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect(("127.0.0.1", s.admin_port)); c.sendall(build_request("GET", "/admin/backup"))
    n503 = 0; reasons = set()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 6:
        r = http(s.port, "GET", "/readyz")
        if r.status != 200:
            n503 += 1; reasons.add(r.body[:200])
        time.sleep(0.05)
    print("after HUP backup_max_ms=1000: cut_off_total", metric(s.port, "kingx_backups_cut_off_total"),
          "pins", metric(s.port, "kingx_backup_pins"))
    print("after HUP storage_timeout_ms=1000: readyz non-200 in 6 s idle:", n503, reasons)
    c.close()
    print(open(s.error_log).read()[-1200:])
finally:
    s.cleanup()
