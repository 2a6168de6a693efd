#!/usr/bin/env python3
"""audit3 probe 4: kingx behind the shipped deploy/nginx-reverse-proxy.conf (Debian's nginx 1.22).

README "Behind nginx": "passes kingx's status codes and problem+json bodies through, and answers 502/504
itself with Connection: close and a problem+json body when kingx is down or late"; README API: "Errors carry
application/problem+json bodies (RFC 9457)"; "never replays a request"; "forwards the request line as sent";
README "Key spelling": "behind nginx, keys containing the byte 0x00 (nginx refuses %00 in a path with 400)".

Cases: HEAD = GET's headers through nginx; 304 and 412 through nginx; the upload limit (64 MiB, nginx's
client_max_body_size = kingx's --max-value-bytes) with Content-Length one over and chunked over; a head
nginx refuses itself (a header line over nginx's 8 KiB buffer, %00 in the path); 504 with a copy of the
file whose proxy_read_timeout is 2 s (the shipped 60 s, the same location), kingx's worker SIGSTOPped;
a PUT whose kingx worker is killed mid-body: one PUT reaches kingx (requests_total{method="PUT"} +1).

Usage: KINGX_BIN=... python3 p4_nginx.py [extra kingx flags]
"""
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_common import read_answer, summary, verdict  # noqa: E402
import proxies  # noqa: E402
import kingx_harness as h  # noqa: E402

EXTRA = sys.argv[1:]


def raw(port, data, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = read_answer(s)
    s.close()
    return out


def parse(resp):
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def put_metric(k):
    r = h.http(k.port, "GET", "/metrics")
    m = re.search(r'^kingx_http_requests_total\{method="PUT"\} (\d+)', r.body.decode(), re.M)
    return int(m.group(1)) if m else 0


def main():
    K = h.Server(args=["--workers", "1", "--trusted-proxy", "127.0.0.1"] + EXTRA).start()
    N = proxies.start_nginx("nginx-reverse-proxy.conf", [f"127.0.0.1:{K.port}"])
    try:
        # HEAD = GET's headers through nginx
        val = h.compressible_text(300_000, 3)
        h.http(N.port, "PUT", "/v1/kv/hv", val, headers=[("Content-Type", "text/x-probe")])
        ign = {"date", "x-request-id", "server"}
        g = h.http(N.port, "GET", "/v1/kv/hv")
        hd = h.http(N.port, "HEAD", "/v1/kv/hv")
        gh = {k.lower(): v for k, v in g.headers if k.lower() not in ign}
        hh = {k.lower(): v for k, v in hd.headers if k.lower() not in ign}
        verdict("HEAD through nginx gives the GET's headers", gh == hh and hd.body == b"",
                f"GET {sorted(gh.items())} HEAD {sorted(hh.items())}")
        et = g.header("ETag")
        r304 = h.http(N.port, "GET", "/v1/kv/hv", headers=[("If-None-Match", et)])
        r412 = h.http(N.port, "PUT", "/v1/kv/hv", b"x", headers=[("If-Match", '"1"')])
        verdict("304 and 412 pass through nginx", r304.status == 304 and r304.header("ETag") == et and
                r412.status == 412 and r412.header("Content-Type") == "application/problem+json",
                f"304 {r304.status} ETag {r304.header('ETag')}; 412 {r412.status} {r412.header('Content-Type')}")
        # The upload limit: one over, Content-Length (announced) and chunked (streamed)
        limit = 64 * 1024 * 1024
        direct = raw(K.port, b"PUT /v1/kv/big HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % (limit + 1))
        via = raw(N.port, b"PUT /v1/kv/big HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % (limit + 1))
        ds, dh, db = parse(direct)
        vs, vh, vb = parse(via)
        verdict("PUT one byte over 64 MiB: problem+json naming the limit, direct and through nginx",
                ds == 413 and vs == 413 and dh.get("content-type") == "application/problem+json" ==
                vh.get("content-type"),
                f"direct {ds} {dh.get('content-type')} {db[:120]!r}; nginx {vs} {vh.get('content-type')} "
                f"{vb[:120]!r}")
        # a head nginx refuses itself
        big_hdr = raw(N.port, b"GET /v1/kv/hv HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n")
        s1, h1, b1 = parse(big_hdr)
        nul = raw(N.port, b"GET /v1/kv/a%00b HTTP/1.1\r\nHost: h\r\n\r\n")
        s2, h2, b2 = parse(nul)
        verdict("errors nginx answers itself (header line over 8 KiB, %00 in the path) are problem+json",
                h1.get("content-type") == "application/problem+json" and
                h2.get("content-type") == "application/problem+json",
                f"big header {s1} {h1.get('content-type')}; %00 {s2} {h2.get('content-type')} {b2[:80]!r}")
        verdict("README: behind nginx %00 in a path is 400", s2 == 400, f"{s2}")
        # X-Request-Id through nginx
        ra = h.http(N.port, "GET", "/v1/kv/hv", headers=[("X-Request-Id", "audit3-rid-1")])
        rb = h.http(N.port, "GET", "/v1/kv/hv")
        verdict("X-Request-Id: the client's kept, else nginx's $request_id (32 hex) echoed by kingx",
                ra.header("X-Request-Id") == "audit3-rid-1" and
                re.fullmatch(r"[0-9a-f]{32}", rb.header("X-Request-Id") or "") is not None,
                f"{ra.header('X-Request-Id')}, {rb.header('X-Request-Id')}")
        # never replays: kingx's worker killed while a PUT body streams through nginx
        before = put_metric(K)
        s = socket.create_connection(("127.0.0.1", N.port), timeout=20)
        s.sendall(b"PUT /v1/kv/replay HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n" + b"r" * 500_000)
        time.sleep(0.5)
        w = K.workers()
        for pid in w:
            os.kill(pid, signal.SIGKILL)
        try:
            s.sendall(b"r" * 1_500_000)
        except OSError:
            pass
        out = read_answer(s)
        s.close()
        K.wait_children("kingx-worker", 1, exclude=w)
        time.sleep(0.5)
        st, hd_, bd = parse(out)
        after = put_metric(K)
        g2 = h.http(K.port, "GET", "/v1/kv/replay")
        verdict("a PUT cut by a worker kill is not replayed by nginx", st == 502 and after - before <= 1 and g2.status == 404,
                f"client got {st} {hd_.get('connection')} {bd[:100]!r}; PUTs counted by the new worker {after} "
                f"(before {before}, the killed worker's counters gone with it); GET {g2.status}")
    finally:
        N.cleanup()
        K.stop()
        K.cleanup()
    # 504: the shipped file with proxy_read_timeout 2 s
    K = h.Server(args=["--workers", "1"] + EXTRA).start()
    text = proxies.nginx_site("nginx-reverse-proxy.conf", [f"127.0.0.1:{K.port}"], 0)
    N = proxies.start_nginx("nginx-reverse-proxy.conf", [f"127.0.0.1:{K.port}"])
    try:
        site = open(os.path.join(N.workdir, "site.conf")).read()
        site = proxies.rewrite(site, "proxy_read_timeout 60s;", "proxy_read_timeout 2s;")
        N.write_nginx_site(site)
        N.stop()
        N.start()
        h.http(N.port, "PUT", "/v1/kv/late", b"v")
        w = K.workers()
        for pid in w:
            os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        out = raw(N.port, b"GET /v1/kv/late HTTP/1.1\r\nHost: h\r\n\r\n", timeout=15)
        t = time.monotonic() - t0
        for pid in w:
            os.kill(pid, signal.SIGCONT)
        st, hd_, bd = parse(out)
        verdict("kingx late: 504 problem+json with Connection: close", st == 504 and
                hd_.get("connection") == "close" and hd_.get("content-type") == "application/problem+json",
                f"{st} after {t:.1f} s, Connection {hd_.get('connection')}, {hd_.get('content-type')}, {bd[:90]!r}")
    finally:
        N.cleanup()
        K.stop()
        K.cleanup()
    del text
    summary()


if __name__ == "__main__":
    proxies.exit_on_sigterm()
    main()
