"""Probe: --send-timeout-ms. A reader that reads nothing is closed after one to two
timeouts; a slow reader that keeps reading gets everything (raw, compressed, backup)."""
import os, socket, sys, time, io, tarfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, http, key_path, build_request

TO = 2000
s = Server(["--workers", "1", "--send-timeout-ms", str(TO), "--segment-bytes", "4M"] + sys.argv[1:], admin=True)
s.start()
raw = os.urandom(3 << 20)
z = (b"abcdefghij%08d" % 7) * ((3 << 20) // 18)
http(s.port, "PUT", key_path("raw"), raw, timeout=60)
http(s.port, "PUT", key_path("z"), z, timeout=60)
for i in range(40):
    http(s.port, "PUT", key_path(f"f{i}"), os.urandom(100000))

def open_get(port, path):
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    c.connect(("127.0.0.1", port)); c.sendall(build_request("GET", path)); return c

def drain(c, limit=60):
    c.settimeout(limit); got = b""
    try:
        while True:
            d = c.recv(1 << 20)
            if not d: break
            got += d
    except (ConnectionResetError, socket.timeout) as e:
        return got, type(e).__name__
    return got, "eof"

for name, path, port, full in (("raw", key_path("raw"), s.port, len(raw)), ("z", key_path("z"), s.port, len(z)),
                               ("backup", "/admin/backup", None, None)):
    port = port or s.admin_port
    # 1. reads nothing for 3.5 timeouts
    c = open_get(port, path); time.sleep(3.5 * TO / 1000)
    t = time.monotonic(); got, how = drain(c, 5)
    body = got.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in got else b""
    print(f"{name}: silent reader after {3.5*TO/1000}s: {len(body)} body bytes then {how} ({'closed' if how != 'timeout' else 'still open'})", flush=True)
    c.close()
    # 2. slow steady reader: 16 KiB every 50 ms (~320 KiB/s)
    c = open_get(port, path); c.settimeout(TO * 3 / 1000)
    got = b""; t0 = time.monotonic(); how = "eof"
    try:
        while True:
            d = c.recv(16384)
            if not d: break
            got += d
            if full is not None and b"\r\n\r\n" in got and len(got.split(b"\r\n\r\n", 1)[1]) >= full: break
            time.sleep(0.05)
    except (ConnectionResetError, socket.timeout) as e:
        how = type(e).__name__
    head, _, body = got.partition(b"\r\n\r\n")
    cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
    print(f"{name}: slow reader {len(body)} bytes in {time.monotonic()-t0:.1f}s, {how}, head {cl}", flush=True)
    c.close()
m = http(s.port, "GET", "/metrics").body.decode()
print([l for l in m.splitlines() if "timeouts_total" in l or "backups_" in l])
s.cleanup()
