#!/usr/bin/env python3
"""Probe: README Key spelling "308 … whatever the method, before anything is read or written":
a PUT with a body to a non-canonical spelling, then a pipelined request on the same connection
(the body must be skipped or the connection closed, never read as a request); with
`Expect: 100-continue` (308 instead of 100, nothing stored); a 10 MB Content-Length of which only
the head is sent (answered before the body); chunked. Usage: p9_redirect_body.py KINGX_BIN [args]"""
import os, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
os.environ["KINGX_BIN"] = sys.argv[1]
import kingx_harness as h
from probe_verdicts import summary, verdict

srv = h.Server(args=["--workers", "1"] + sys.argv[2:]); srv.start()
# a body that is itself a request: if read as one, it deletes the victim
SMUGGLE = b"DELETE /v1/kv/victim HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
try:
    with h.Conn(srv.port) as c:
        assert c.request("PUT", "/v1/kv/victim", body=b"alive").status == 201
    for name, head, body in (
            ("Content-Length", b"PUT /v1/kv/a%%2fb HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLE), SMUGGLE),
            ("chunked", b"PUT /v1/kv/a%2fb HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
             b"%x\r\n" % len(SMUGGLE) + SMUGGLE + b"\r\n0\r\n\r\n"),
            ("DELETE with a body", b"DELETE /v1/kv/a%%2fb HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLE), SMUGGLE)):
        for mode in ("one write", "head then body"):
            with h.Conn(srv.port, timeout=5) as c:
                if mode == "one write":
                    c.send(head + body + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                else:
                    c.send(head); time.sleep(0.2); c.send(body + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                r = c.read_response()
                conn = (r.header("Connection") or "").lower()
                try:
                    r2 = c.read_response()
                    nxt = r2.status
                except (h.ConnectionClosed, OSError):
                    nxt = "closed"
            with h.Conn(srv.port) as c:
                v = c.request("GET", "/v1/kv/victim")
            ok = r.status == 308 and r.header("Location") == "/v1/kv/a/b" and v.status == 200 and \
                 (nxt == 200 or (nxt == "closed" and conn == "close"))
            verdict(ok, f"{name}, {mode}: {r.status} {r.header('Location')} Connection={conn!r}, next: {nxt}, victim {v.status}")
    with h.Conn(srv.port, timeout=5) as c:
        c.send(b"PUT /v1/kv/a%2fb HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        r = c.read_response()
        verdict(r.status == 308, f"Expect: 100-continue: first answer {r.status} (want 308, no 100)")
    with h.Conn(srv.port, timeout=5) as c:
        t0 = time.monotonic()
        c.send(b"PUT /v1/kv/a%2fb HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        r = c.read_response()
        verdict(r.status == 308, f"10 MB announced, head only: {r.status} after {time.monotonic() - t0:.2f}s")
    with h.Conn(srv.port) as c:
        verdict(c.request("GET", "/v1/kv/a/b").status == 404, "nothing stored under a/b")
finally:
    srv.stop(); srv.cleanup()
summary()
