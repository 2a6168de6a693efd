import os, signal, sys, time, socket, threading
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, Conn, http, key_path
s = Server(["--workers", "2"] + sys.argv[1:]); s.start()
# a slow upload keeps the server draining for a while
u = socket.create_connection(("127.0.0.1", s.port))
u.sendall(b"PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
time.sleep(0.3)
t0 = time.monotonic(); s.signal(signal.SIGQUIT)
seen = []
while time.monotonic() - t0 < 3:
    try:
        r = http(s.port, "GET", "/readyz", timeout=2)
        seen.append((round(time.monotonic() - t0, 2), r.status))
    except Exception as e:
        seen.append((round(time.monotonic() - t0, 2), type(e).__name__))
    time.sleep(0.05)
print(seen[:6], "...", seen[-3:])
print("200s after 0.1 s:", [x for x in seen if x[0] > 0.1 and x[1] == 200][:5])
u.sendall(b"x" * 90)
u.settimeout(5)
print("slow upload answer:", u.recv(200)[:40])
s.cleanup()
