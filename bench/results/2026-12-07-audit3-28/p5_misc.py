#!/usr/bin/env python3
"""audit3 probe 5: request ids, keep-alive, listing parameters, HEAD of /metrics.

README "Logs": "X-Request-Id is echoed or generated (32 hex digits, never reused)"; --help "--keepalive-timeout-ms:
idle keep-alive connection timeout" (the `Keep-Alive: timeout=` header kingx sends); README Listing: "Bad input
(limit out of range, an unknown or repeated parameter, an invalid % escape, encoding other than url) is 400
application/problem+json whose detail and parameter name the parameter. PUT/DELETE on /v1/kv/ are 405
(Allow: GET, HEAD)"; "limit=N keys per page, 1 to 1000"; "a cursor ... cannot be combined with start_after";
API table "GET /metrics, HEAD /metrics".

Usage: KINGX_BIN=... python3 p5_misc.py [extra kingx flags]
"""
import os
import re
import signal
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_common import run, verdict  # noqa: E402
import kingx_harness as h  # noqa: E402

EXTRA = sys.argv[1:]


def ids(port, n, fresh_every=1):
    out = []
    c = None
    for i in range(n):
        if c is None or i % fresh_every == 0:
            if c is not None:
                c.close()
            c = h.Conn(port)
        out.append(c.request("GET", "/healthz").header("X-Request-Id"))
    c.close()
    return out


def probe_request_ids():
    srv = h.Server(args=["--workers", "2"] + EXTRA).start()
    got = ids(srv.port, 3000, fresh_every=1)       # a new connection each: both workers
    got += ids(srv.port, 3000, fresh_every=1000)
    srv.signal(signal.SIGHUP)
    time.sleep(1.5)
    got += ids(srv.port, 2000, fresh_every=1)
    srv.stop()
    srv.start()
    got += ids(srv.port, 2000, fresh_every=1)
    srv.kill_group()
    srv.start()
    got += ids(srv.port, 2000, fresh_every=1)
    srv.stop()
    srv.cleanup()
    shape = all(re.fullmatch(r"[0-9a-f]{32}", x or "") for x in got)
    dup = len(got) - len(set(got))
    verdict("generated X-Request-Id: 32 hex digits, never reused (2 workers, HUP, stop, kill -9)",
            shape and dup == 0, f"{len(got)} ids, shape ok {shape}, duplicates {dup}")


def probe_keepalive():
    srv = h.Server(args=["--workers", "1", "--keepalive-timeout-ms", "1500"] + EXTRA).start()
    c = h.Conn(srv.port)
    r = c.request("GET", "/healthz")
    ka = r.header("Keep-Alive")
    t0 = time.monotonic()
    closed = c.wait_closed(timeout=10)
    t = time.monotonic() - t0
    srv.stop()
    srv.cleanup()
    verdict("--keepalive-timeout-ms 1500: Keep-Alive header says it, an idle connection closed after it",
            ka == "timeout=1" and closed and 1.4 <= t <= 3.0, f"Keep-Alive: {ka}; closed={closed} after {t:.2f} s")


def probe_listing_params():
    srv = h.Server(args=["--workers", "1"] + EXTRA).start()
    for i in range(5):
        h.http(srv.port, "PUT", f"/v1/kv/l/{i}", b"v")
    bad = {
        "limit=0": "limit", "limit=1001": "limit", "limit=-1": "limit", "limit=1e3": "limit", "limit=": "limit",
        "limit=%2B5": "limit", "limit=5&limit=6": "limit", "limit=99999999999999999999999": "limit",
        "foo=1": "foo", "encoding=URL": "encoding", "encoding=": "encoding", "encoding=json": "encoding",
        "prefix=%zz": "prefix", "prefix=%4": "prefix", "start_after=%": "start_after",
        "cursor=abc&start_after=a": "cursor", "cursor=": "cursor", "cursor=%%%": "cursor",
        "prefix=a&prefix=b": "prefix", "LIMIT=5": "LIMIT",
    }
    wrong = []
    for q, param in bad.items():
        r = h.http(srv.port, "GET", "/v1/kv/?" + q)
        ok = (r.status == 400 and r.header("Content-Type") == "application/problem+json"
              and r.json().get("parameter") == param and param in r.json().get("detail", ""))
        if not ok:
            wrong.append((q, r.status, r.body[:120]))
    verdict(f"listing: {len(bad)} bad parameters each 400 problem+json naming it", not wrong, f"wrong: {wrong}")
    good = {"limit=1": 1, "limit=1000": 5, "limit=01": 1, "prefix=l/&limit=2": 2, "start_after=l/4": 0,
            "prefix=zz": 0, "encoding=url&prefix=l%2F": 5}
    wrong = []
    for q, n in good.items():
        r = h.http(srv.port, "GET", "/v1/kv/?" + q)
        if r.status != 200 or len(r.json()["keys"]) != n:
            wrong.append((q, r.status, r.body[:100]))
    verdict("listing: limit 1 and 1000, prefix, start_after past the end: 200 with the keys", not wrong,
            f"wrong: {wrong}")
    # paging with limit=1 over the 5 keys: each once, in order
    seen, cursor = [], None
    for _ in range(10):
        q = "prefix=l/&limit=1" + (f"&cursor={urllib.parse.quote(cursor, safe='')}" if cursor else "")
        doc = h.http(srv.port, "GET", "/v1/kv/?" + q).json()
        seen += [k["key"] for k in doc["keys"]]
        if doc["list_complete"]:
            break
        cursor = doc["cursor"]
    verdict("listing: limit=1 pages follow cursors to list_complete, each key once in order",
            seen == [f"l/{i}" for i in range(5)], f"{seen}")
    wrong = []
    for m in ("PUT", "DELETE", "POST"):
        r = h.http(srv.port, m, "/v1/kv/", b"x" if m != "DELETE" else None)
        if r.status != 405 or r.header("Allow") != "GET, HEAD":
            wrong.append((m, r.status, r.header("Allow")))
    verdict("listing: PUT/DELETE/POST on /v1/kv/ are 405 Allow: GET, HEAD", not wrong, f"wrong: {wrong}")
    g = h.http(srv.port, "GET", "/metrics")
    hd = h.http(srv.port, "HEAD", "/metrics")
    names = lambda r: sorted(k.lower() for k, _ in r.headers if k.lower() not in ("date", "x-request-id"))
    verdict("HEAD /metrics: the GET's header fields, no body",
            names(g) == names(hd) and hd.body == b"" and hd.status == 200 and
            g.header("Content-Type") == hd.header("Content-Type"),
            f"GET {names(g)} {g.header('Content-Type')}; HEAD {names(hd)} CL {hd.header('Content-Length')} vs "
            f"{g.header('Content-Length')}")
    srv.stop()
    srv.cleanup()


def main():
    run((probe_request_ids, probe_keepalive, probe_listing_params))


if __name__ == "__main__":
    main()
