"""Probe: --response-buffer-bytes held by stalled readers of compressed values; an innocent
client's GET waits for room: is it answered whole once the stalled readers are closed by the
send timeout, or closed itself?"""
import os, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, http, key_path, build_request, Conn

TO = int(os.environ.get("TO", "3000"))
s = Server(["--workers", "1", "--send-timeout-ms", str(TO), "--response-buffer-bytes", "1M"] + sys.argv[1:])
s.start()
z = b"".join(b"line %09d of a compressible value\n" % i for i in range((8 << 20) // 36))
http(s.port, "PUT", key_path("z"), z, timeout=60)
http(s.port, "PUT", key_path("small"), b"hello")
stalled = []
for i in range(24):
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect(("127.0.0.1", s.port)); c.sendall(build_request("GET", key_path("z"))); stalled.append(c)
time.sleep(0.5)
t0 = time.monotonic()
r = http(s.port, "GET", key_path("small"), timeout=30)
print("small GET beside stalled readers:", r.status, f"{time.monotonic()-t0:.2f}s")
t0 = time.monotonic()
try:
    with Conn(s.port, timeout=60) as c:
        r = c.request("GET", key_path("z"))
        print("innocent big GET:", r.status, len(r.body), r.body == z, f"{time.monotonic()-t0:.2f}s")
except Exception as e:
    print("innocent big GET FAILED after", f"{time.monotonic()-t0:.2f}s", repr(e))
m = http(s.port, "GET", "/metrics").body.decode()
print([l for l in m.splitlines() if "timeouts_total" in l])
for c in stalled: c.close()
s.cleanup()
