import os, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../tests/blackbox"))
from kingx_harness import Server, http, key_path, metric
rb = int(sys.argv[1]); sizes = range(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
with Server(["--workers", "1"] + sys.argv[5:]) as s:
    hits = []
    for size in sizes:
        http(s.port, "PUT", key_path("v%d" % size), os.urandom(size))
        b0 = metric(s.port, "kingx_http_writes_blocked_total")
        c = socket.socket()
        if rb: c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rb)
        c.connect(("127.0.0.1", s.port))
        c.sendall(b"GET /v1/kv/v%d HTTP/1.1\r\nHost: h\r\n\r\nPUT /v1/kv/w HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx" % size)
        time.sleep(0.05)
        b1 = metric(s.port, "kingx_http_writes_blocked_total")
        c.close()
        if b1 > b0: hits.append((size, b1 - b0))
    print(rb, list(sizes)[:1], hits)
