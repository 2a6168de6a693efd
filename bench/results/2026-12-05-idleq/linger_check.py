import os, sys, time, re
sys.path.insert(0, os.getcwd())
from kingx_harness import Server, Conn, http
s = Server(["--workers", "1", "--header-timeout-ms", "1000"]); s.start()
def open_conns():
    body = http(s.port, "GET", "/metrics").body.decode()
    return int(float(re.search(r"^kingx_http_open_connections\S* (\S+)", body, re.M).group(1)))
try:
    c = Conn(s.port, timeout=20)
    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    r = c.read_response(); print("status", r.status)
    # the client never closes: the server lingers (FIN sent), then closes at the linger's end
    t0 = time.monotonic(); samples = []
    while time.monotonic() - t0 < 5:
        samples.append((round(time.monotonic() - t0, 1), open_conns())); time.sleep(0.5)
    print(samples)
    c.close()
finally:
    s.cleanup()
