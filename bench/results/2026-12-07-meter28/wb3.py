import os, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../tests/blackbox"))
from kingx_harness import Server, http, key_path, metric
size = int(sys.argv[1]); rb = int(sys.argv[2]); extra = sys.argv[3:]
with Server(["--workers", "1"] + extra) as s:
    http(s.port, "PUT", key_path("v"), os.urandom(size))
    res = []
    for rep in range(5):
        b0 = metric(s.port, "kingx_http_writes_blocked_total")
        c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rb); c.connect(("127.0.0.1", s.port))
        c.sendall(b"GET /v1/kv/v HTTP/1.1\r\nHost: h\r\n\r\nPUT /v1/kv/w HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx")
        time.sleep(0.3)
        b1 = metric(s.port, "kingx_http_writes_blocked_total")
        c.settimeout(5); got = b""
        while got.count(b"HTTP/1.1 ") < 2 or not got.endswith(b"\r\n\r\n") and False:
            d = c.recv(65536)
            if not d: break
            got += d
            if b"HTTP/1.1 201" in got or b"HTTP/1.1 204" in got: break
        c.close(); time.sleep(0.1)
        res.append((b1 - b0, metric(s.port, "kingx_http_writes_blocked_total") - b0, len(got)))
    print(size, rb, extra, res)
