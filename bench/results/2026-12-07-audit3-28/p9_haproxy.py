#!/usr/bin/env python3
"""audit3 probe 9: the shipped deploy/haproxy-sharding.cfg (Debian's HAProxy 2.6) in front of 2 kingx shards:
the errors HAProxy answers itself. README "Across machines": "while a shard is down, requests for its keys fail
(nginx 502/504, HAProxy 503)"; "HAProxy refuses raw non-ASCII bytes in a request line (400)"; README API:
"Errors carry application/problem+json bodies (RFC 9457)". Each answer's status and Content-Type.

Usage: KINGX_BIN=... python3 p9_haproxy.py [extra kingx flags]
"""
import os, sys
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "deploy")); sys.path.insert(0, os.path.join(REPO, "tests", "blackbox"))
import proxies  # noqa: E402
import kingx_harness as h  # noqa: E402

shards = [h.Server(args=["--workers", "1"] + sys.argv[1:]).start() for _ in range(2)]
P = proxies.start_haproxy([f"127.0.0.1:{s.port}" for s in shards])
ok_all = True
try:
    def show(what, r, want):
        global ok_all
        ok = r.status == want and r.header("Content-Type") == "application/problem+json"
        ok_all = ok_all and ok
        print(("HELD " if ok else "FALSE"), f"{what}: {r.status} {r.header('Content-Type')} {r.body[:90]!r}", flush=True)
    with h.Conn(P.port) as c:
        c.send(b"GET /v1/kv/caf\xc3\xa9 HTTP/1.1\r\nHost: kv\r\n\r\n")
        show("raw non-ASCII in the request line", c.read_response(), 400)
    shards[1].stop()
    down = 0
    for i in range(40):
        r = h.http(P.port, "GET", f"/v1/kv/k{i}")
        if r.status != 404:
            show(f"a key of the stopped shard (k{i})", r, 503)
            down += 1
            break
    print("RESULT", "HELD" if ok_all else "FALSE")
finally:
    P.cleanup()
    for s in shards:
        if s.alive():
            s.stop()
        s.cleanup()
