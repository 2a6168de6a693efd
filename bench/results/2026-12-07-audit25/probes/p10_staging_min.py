import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, http, key_path
for extra in (["--staging-bytes", "2M", "--max-value-bytes", "2M"], ["--staging-bytes", "2M", "--max-value-bytes", "2M", "--compression-level", "0"]):
    s = Server(["--workers", "1"] + extra); s.start()
    try:
        for n in ((1 << 20) + 1, (2 << 20) - 100, 2 << 20):
            r = http(s.port, "PUT", key_path(f"v{n}"), os.urandom(n), timeout=60)
            print(extra, n, "->", r.status, r.body[:160])
    finally:
        s.cleanup()
