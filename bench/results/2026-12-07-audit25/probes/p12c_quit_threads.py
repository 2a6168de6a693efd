import os, signal, sys, time, socket
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, http
s = Server(["--workers", "1"] + sys.argv[1:]); s.start()
u = socket.create_connection(("127.0.0.1", s.port))
u.sendall(b"PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
time.sleep(0.3)
s.signal(signal.SIGQUIT); time.sleep(0.5)
t0 = time.monotonic()
c = socket.create_connection(("127.0.0.1", s.port), timeout=20)
print("connect after QUIT succeeded in", round(time.monotonic() - t0, 3), "s")
c.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
try:
    d = c.recv(100); print("answer after", round(time.monotonic() - t0, 2), "s:", d[:40])
except Exception as e:
    print("no answer after", round(time.monotonic() - t0, 2), "s:", repr(e))
s.cleanup()
