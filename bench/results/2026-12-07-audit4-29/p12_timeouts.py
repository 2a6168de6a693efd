#!/usr/bin/env python3
"""audit4 probe 12: README Metrics `kingx_http_timeouts_total` "header, body, idle and send timeouts": each kind
provoked once (--keepalive-timeout-ms 1000, --header-timeout-ms 1000, --body-timeout-ms 1000,
--send-timeout-ms 1000), the counter's delta after each.

Usage: KINGX_BIN=... python3 p12_timeouts.py [extra kingx flags]
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "2026-12-07-audit3-28"))
from probe_common import run, verdict  # noqa: E402
import kingx_harness as h  # noqa: E402

EXTRA = sys.argv[1:]


def p_timeouts():
    args = ["--workers", "1", "--keepalive-timeout-ms", "1000", "--header-timeout-ms", "1000",
            "--body-timeout-ms", "1000", "--send-timeout-ms", "1000"]
    with h.Server(args=EXTRA + args) as s:
        h.http(s.port, "PUT", "/v1/kv/big", body=os.urandom(8 << 20))
        deltas = {}

        def count():
            return h.metric(s.port, "kingx_http_timeouts_total")

        def idle(c):
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            c.recv(4096)

        def header(c):
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost")

        def body(c):
            c.sendall(b"PUT /v1/kv/b HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")

        def send(c):
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.sendall(b"GET /v1/kv/big HTTP/1.1\r\nHost: x\r\n\r\n")
        for name, fn in (("idle", idle), ("header", header), ("body", body), ("send", send)):
            before = count()
            c = socket.socket()
            if name == "send":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.connect(("127.0.0.1", s.port))
            fn(c)
            time.sleep(3.5)
            deltas[name] = count() - before
            c.close()
        verdict("kingx_http_timeouts_total counts idle, header, body and send timeouts", all(v == 1 for v in deltas.values()),
                f"deltas {deltas}")


run([p_timeouts])
