import os, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, http, key_path, build_request, adopt, metric
s = Server(["--workers", "1", "--body-buffer-bytes", "1M", "--body-timeout-ms", "60000"] + sys.argv[1:]); s.start()
N = 12; vals = [os.urandom((256 << 10) + i * 777) for i in range(N)]
socks = []
def chunks(v):
    out = b""
    for a in range(0, len(v), 50000):
        p = v[a:a + 50000]; out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out
for i in range(N):
    c = socket.create_connection(("127.0.0.1", s.port))
    body = chunks(vals[i])
    c.sendall(build_request("PUT", key_path(f"c{i}"), None, [("Transfer-Encoding", "chunked")]) + body[:-5])
    socks.append((c, body[-5:]))
time.sleep(3)
r = http(s.port, "PUT", key_path("small"), os.urandom(65536), timeout=30); print("64 KiB PUT beside them:", r.status)
for c, rest in socks: c.sendall(rest + b"0\r\n\r\n")
res = [adopt(c, s.port, 60).read_response().status for c, _ in socks]
print("answers", res)
bad = sum(1 for i in range(N) if http(s.port, "GET", key_path(f"c{i}"), timeout=30).body != vals[i])
print("wrong read-backs", bad)
s.cleanup()
