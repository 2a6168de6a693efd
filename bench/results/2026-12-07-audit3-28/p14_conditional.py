#!/usr/bin/env python3
"""audit3 probe 14: conditional requests at their edges (RFC 9110 §13.1), beyond session 26's 26 cases:
If-None-Match uses the weak comparison on every method (W/"e" matches "e": a PUT or DELETE with it is 412),
If-Match the strong one (W/"e" never matches: 412), If-Match: * on an absent key 412, If-None-Match: * on
DELETE of an absent key (the precondition holds: 404 absent), both fields at once (If-Match decides first,
§13.2.2), a malformed entity-tag list (400 or ignored, never a 2xx that skips the check), and a 412's body.
Usage: KINGX_BIN=... python3 p14_conditional.py [extra kingx flags]"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_common import summary, verdict  # noqa: E402
import kingx_harness as h  # noqa: E402

srv = h.Server(args=["--workers", "1"] + sys.argv[1:]).start()
p = srv.port


def fresh(key):
    h.http(p, "DELETE", "/v1/kv/" + key)
    r = h.http(p, "PUT", "/v1/kv/" + key, b"v1")
    return r.header("ETag")


cases = []
e = fresh("c")
cases.append(("PUT If-None-Match: W/<current>", "PUT", "c", [("If-None-Match", "W/" + e)], 412))
cases.append(("DELETE If-None-Match: W/<current>", "DELETE", "c", [("If-None-Match", "W/" + e)], 412))
cases.append(("PUT If-Match: W/<current> (strong comparison)", "PUT", "c", [("If-Match", "W/" + e)], 412))
cases.append(("DELETE If-Match: W/<current>", "DELETE", "c", [("If-Match", "W/" + e)], 412))
cases.append(("GET If-Match: W/<current>", "GET", "c", [("If-Match", "W/" + e)], 412))
cases.append(("PUT If-Match: * on an absent key", "PUT", "absent1", [("If-Match", "*")], 412))
cases.append(("DELETE If-Match: * on an absent key", "DELETE", "absent1", [("If-Match", "*")], 412))
cases.append(("DELETE If-None-Match: * on an absent key", "DELETE", "absent1", [("If-None-Match", "*")], 404))
cases.append(("PUT If-Match: <current> + If-None-Match: <current>: If-Match first, then If-None-Match fails", "PUT",
              "c", [("If-Match", e), ("If-None-Match", e)], 412))
cases.append(("PUT If-Match: \"1\", <current> (a list)", "PUT", "c", [("If-Match", '"1", ' + e)], 204))
bad = []
for name, m, key, hdrs, want in cases:
    r = h.http(p, m, "/v1/kv/" + key, b"v2" if m == "PUT" else None, hdrs)
    ok = r.status == want and (want != 412 or r.header("Content-Type") == "application/problem+json")
    print(("   ok " if ok else "   BAD"), name, "->", r.status, "want", want, flush=True)
    if not ok:
        bad.append((name, r.status))
e = fresh("m")
for hv in ('"unterminated', 'abc', '"a" "b"', 'W/', '"a",,"b"'):
    r = h.http(p, "PUT", "/v1/kv/m", b"v3", [("If-Match", hv)])
    ok = r.status in (400, 412)
    print(("   ok " if ok else "   BAD"), f"PUT If-Match: {hv} ->", r.status, flush=True)
    if not ok:
        bad.append((hv, r.status))
g = h.http(p, "GET", "/v1/kv/m")
verdict("conditional requests at their edges (weak/strong comparison per field, *, both fields, malformed lists)",
        not bad and g.body == b"v1", f"wrong: {bad}; the key after the malformed If-Match PUTs: {g.body!r}")
srv.stop()
srv.cleanup()
summary()
