"""Probe: request smuggling pairs sent to nginx and HAProxy (the shipped configurations) in
front of kingx. After each, the victim key must still exist and no DELETE must reach kingx."""
import os, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "deploy")); sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "blackbox"))
import proxies
from kingx_harness import Server, http, key_path

SMUG = b"DELETE /v1/kv/victim HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
def chunk(b): return b"%x\r\n" % len(b) + b + b"\r\n"
H = b"PUT /v1/kv/carrier HTTP/1.1\r\nHost: x\r\n"
cases = {
 "CL.TE": H + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (5 + len(SMUG)) + SMUG,
 "TE.CL": H + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunk(SMUG) + b"0\r\n\r\n",
 "TE space colon": H + b"Transfer-Encoding : chunked\r\nContent-Length: %d\r\n\r\n0\r\n\r\n" % (5 + len(SMUG)) + SMUG,
 "TE tab": H + b"Transfer-Encoding:\tchunked\r\nContent-Length: %d\r\n\r\n0\r\n\r\n" % (5 + len(SMUG)) + SMUG,
 "TE chunked,identity": H + b"Transfer-Encoding: chunked, identity\r\nContent-Length: %d\r\n\r\n0\r\n\r\n" % (5 + len(SMUG)) + SMUG,
 "TE identity,chunked": H + b"Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n" + SMUG,
 "TE xchunked": H + b"Transfer-Encoding: xchunked\r\nContent-Length: %d\r\n\r\n0\r\n\r\n" % (5 + len(SMUG)) + SMUG,
 "TE twice": H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + SMUG,
 "TE vertical tab": H + b"Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n" + SMUG,
 "CL twice": H + b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(SMUG) + SMUG,
 "CL list": H + b"Content-Length: 0, %d\r\n\r\n" % len(SMUG) + SMUG,
 "CL plus": H + b"Content-Length: +%d\r\n\r\n" % len(SMUG) + SMUG,
 "chunk ext bare CR": H + b"Transfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n" + SMUG,
 "chunk LF only": H + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n" + SMUG,
 "chunk size overflow": H + b"Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n" + SMUG,
 "chunk data no CRLF": H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" + SMUG,
 "last chunk trailer bare CR": H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\rDELETE /v1/kv/victim HTTP/1.1\r\n\r\n",
 "HTTP/1.0 TE": b"PUT /v1/kv/carrier HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n0\r\n\r\n" % (5 + len(SMUG)) + SMUG,
 "obs-fold TE": H + b"X: a\r\n Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n0\r\n\r\n" % (5 + len(SMUG)) + SMUG,
 "GET with body CL": b"GET /v1/kv/carrier HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SMUG) + SMUG,
 "space before colon CL": H + b"Content-Length : %d\r\n\r\n" % len(SMUG) + SMUG,
 "NUL in header": H + b"X: a\x00b\r\nContent-Length: %d\r\n\r\n" % len(SMUG) + SMUG,
 "Expect 100 then junk": H + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(SMUG) + SMUG,
 "chunked 0x prefix": H + b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n" + SMUG,
 "chunk size negative": H + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n" + SMUG,
 "chunk size space": H + b"Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n" + SMUG,
 "upgrade h2c": b"GET /v1/kv/carrier HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n" + SMUG,
 "CONNECT": b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n" + SMUG,
}
proxies.HAPROXY_GLOBAL = proxies.HAPROXY_GLOBAL.replace("local0 notice", "local0 info")
k = Server(["--workers", "1"] + sys.argv[1:])
k.start()
fronts = []
try:
    fronts.append(("nginx", proxies.start_nginx("nginx-reverse-proxy.conf", [f"127.0.0.1:{k.port}"])))
    fronts.append(("haproxy", proxies.start_haproxy([f"127.0.0.1:{k.port}"])))
    bad = 0
    for fname, fr in fronts:
        port = fr.port if fr else k.port
        for name, data in cases.items():
            for whole in (True, False):
                http(k.port, "PUT", key_path("victim"), b"alive")
                def dels(path):
                    try:
                        return sum(1 for l in open(path, errors="replace") if "DELETE /v1/kv/victim" in l)
                    except OSError:
                        return 0
                plog = os.path.join(fr.workdir, "access.log" if fname == "nginx" else "stdout.log")
                k0, p0 = dels(k.access_log), dels(plog)
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                try:
                    if whole:
                        try:
                            s.sendall(data)
                        except OSError:
                            pass
                    else:
                        try:
                            for i in range(len(data)):
                                s.send(data[i:i+1])
                        except OSError:
                            pass
                    # a second, innocent request on the same connection
                    try: s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    except OSError: pass
                    got = b""
                    t = time.time()
                    while time.time() - t < 3:
                        try:
                            d = s.recv(65536)
                        except (socket.timeout, ConnectionResetError):
                            break
                        if not d: break
                        got += d
                finally:
                    s.close()
                time.sleep(1.2)  # access logs are buffered per process
                r = http(k.port, "GET", key_path("victim"))
                kd, pd = dels(k.access_log) - k0, dels(plog) - p0
                statuses = [l.split(b" ")[1].decode() for l in got.split(b"\r\n") if l.startswith(b"HTTP/1.")]
                flag = "SMUGGLED" if kd > pd else "ok"
                if kd > pd: bad += 1
                print(f"{fname:8s} {name:28s} {'whole' if whole else 'bytes'} -> {statuses} victim {r.status} DELETEs proxy {pd} kingx {kd} {flag}", flush=True)
    print("BAD" if bad else "HELD")
finally:
    for _, fr in fronts:
        if fr: fr.cleanup()
    k.cleanup()
