# Worker system calls per keep-alive GET (2,000 GETs of a missing key on one
# connection, strace -f on the worker): python3 THIS BIN [BIN...] from the tree root.
import os, sys, socket, time
sys.path.insert(0, "tests/blackbox")
from kingx_harness import Server, build_request, key_path, traced_calls
for b in sys.argv[1:]:
    os.environ["KINGX_BIN"] = b
    srv = Server(["--workers", "1"]); srv.start()
    try:
        w = srv.wait_children("kingx-worker", 1)[0]
        s = socket.create_connection(("127.0.0.1", srv.port))
        req = build_request("GET", key_path("absent"))
        def run():
            for i in range(2000):
                s.sendall(req)
                buf = b""
                while b"\r\n\r\n" not in buf or not buf.endswith(b"}") and b"Content-Length: 0" not in buf:
                    d = s.recv(65536)
                    buf += d
                    if b"\r\n\r\n" in buf:
                        h, _, body = buf.partition(b"\r\n\r\n")
                        cl = [int(l.split(b":")[1]) for l in h.split(b"\r\n") if l.lower().startswith(b"content-length")]
                        if len(body) >= (cl[0] if cl else 0): break
        c = traced_calls(w, ("epoll_wait", "epoll_pwait", "recvfrom", "sendto", "epoll_ctl"), run)
        print(b, dict(c), "per GET:", {k: round(v / 2000, 3) for k, v in c.items()}, flush=True)
        s.close()
    finally:
        srv.cleanup()
