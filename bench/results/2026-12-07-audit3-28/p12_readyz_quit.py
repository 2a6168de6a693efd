#!/usr/bin/env python3
"""audit3 probe 12: README API "/readyz: 200 when storage is open, not draining ..., else 503 with the reason
(... stopping)" and QUIT "/readyz 503": a keep-alive client asks /readyz right after QUIT (inside the idle grace),
and GET of a key on another kept connection is still served.
Usage: KINGX_BIN=... python3 p12_readyz_quit.py [extra kingx flags]"""
import os, signal, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_common import verdict, summary  # noqa: E402
import kingx_harness as h  # noqa: E402

srv = h.Server(args=["--workers", "1"] + sys.argv[1:]).start()
h.http(srv.port, "PUT", "/v1/kv/q", b"v")
a, b = h.Conn(srv.port), h.Conn(srv.port)
a.request("GET", "/healthz"), b.request("GET", "/healthz")
srv.signal(signal.SIGQUIT)
time.sleep(0.2)
r = a.request("GET", "/readyz")
g = b.request("GET", "/v1/kv/q")
verdict("QUIT: /readyz on a kept connection is 503 naming the stop; a GET on another is served",
        r.status == 503 and b"stop" in r.body.lower() and g.status == 200 and g.body == b"v",
        f"/readyz {r.status} {r.body[:120]!r} (Connection: {r.header('Connection')}); GET {g.status}")
srv.wait_exit(30)
srv.cleanup()
summary()
