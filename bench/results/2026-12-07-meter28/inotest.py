import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../tests/blackbox"))
from kingx_harness import Server, http, key_path
def files(d):
    return sorted((n, os.stat(os.path.join(d,n)).st_ino, os.stat(os.path.join(d,n)).st_size) for n in os.listdir(d) if n.endswith(('.kxd','.hint')))
base = ["--workers", "1", "--segment-bytes", "1M", "--compression-level", "0", "--compaction-dead-ratio", "0.99"]
value = bytes(range(256)) * 400
with Server(base) as s:
    for i in range(41): http(s.port, "PUT", key_path(f"c{i}"), value)
    for i in range(0, 40, 5): http(s.port, "DELETE", key_path(f"c{i}"))
    print(files(s.data_dir)); s.stop(); print(files(s.data_dir))
    s2 = Server(base, data_dir=s.data_dir); s2.start(); time.sleep(1); print(files(s2.data_dir)); s2.stop(); print(files(s2.data_dir))
    print(open(s2.error_log).read()[-1500:])
