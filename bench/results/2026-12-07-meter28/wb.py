import os, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../tests/blackbox"))
from kingx_harness import Server, http, key_path, metric
size = int(sys.argv[1]); n = int(sys.argv[2]); chunk = int(sys.argv[3]); pause = float(sys.argv[4])
with Server(["--workers", "1"] + sys.argv[5:]) as s:
    http(s.port, "PUT", key_path("big"), os.urandom(size))
    b0 = metric(s.port, "kingx_http_writes_blocked_total")
    c = socket.create_connection(("127.0.0.1", s.port))
    rb = int(os.environ.get("RB", "0"))
    if rb: c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rb)
    c.sendall(b"GET /v1/kv/big HTTP/1.1\r\nHost: h\r\n\r\n" * n)
    time.sleep(float(os.environ.get("WAIT", "0")))
    got = 0; t0 = time.time()
    while time.time() - t0 < 20:
        d = c.recv(chunk)
        if not d: break
        got += len(d)
        if got >= n * size: break
        time.sleep(pause)
    print("elapsed", time.time()-t0); c.close()
    time.sleep(0.2)
    print("got", got, "blocked delta", metric(s.port, "kingx_http_writes_blocked_total") - b0)
