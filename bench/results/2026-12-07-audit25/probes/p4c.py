import os, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
from kingx_harness import Server, http, key_path, build_request
TO = int(os.environ.get("TO", "3000"))
s = Server(["--workers", "1", "--send-timeout-ms", str(TO), "--response-buffer-bytes", "1M"] + sys.argv[1:])
s.start()
z = b"".join(b"line %09d of a compressible value\n" % i for i in range((8 << 20) // 36))
http(s.port, "PUT", key_path("z"), z, timeout=60)
stalled = []
for i in range(24):
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect(("127.0.0.1", s.port)); c.sendall(build_request("GET", key_path("z"))); stalled.append(c)
time.sleep(0.5)
t0 = time.monotonic()
c = socket.create_connection(("127.0.0.1", s.port)); c.sendall(build_request("GET", key_path("z"))); c.settimeout(30)
got = 0; marks = []
while True:
    try: d = c.recv(1 << 20)
    except OSError as e: marks.append(("err", repr(e))); break
    if not d: marks.append(("eof", round(time.monotonic() - t0, 2), got)); break
    got += len(d)
    if not marks or got - marks[-1][2] > 500000 or len(marks) < 3: marks.append(("data", round(time.monotonic() - t0, 2), got))
print("innocent:", marks[:6], "...", marks[-3:], "total", got, "of", len(z))
for c in stalled: c.close()
s.cleanup()
