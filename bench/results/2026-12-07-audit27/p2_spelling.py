#!/usr/bin/env python3
"""Probe: README "Key spelling: one URL per key". Every spelling of a key is
answered 308 to its canonical spelling (urllib.parse.quote(key, safe="/"))
before anything is read or written, for every method and both head readers
(the fast GET/HEAD recogniser and llhttp); the canonical one is served; a
key written under one spelling reads back under every other after the
redirect. Usage: p2_spelling.py KINGX_BIN [kingx args...]"""
import os, sys, urllib.parse
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
os.environ["KINGX_BIN"] = sys.argv[1]
import kingx_harness as h
from probe_verdicts import summary, verdict

def canon(key: bytes) -> str:
    return urllib.parse.quote(key, safe="/")

KEYS = [b"a/b", "caf\u00e9".encode(), b"A~-._z", b"x y", b"p+q", b"100%", b"!$&'()*,;=:@", b"\x00\xff", b"a//b",
        b"a/./b", b"a/../b", b"?q", b"#f", b"\x7f", b"~"]

def spellings(key: bytes):
    """Other spellings that decode to `key` (bytes as sent in a target)."""
    out = set()
    out.add("".join("%%%02X" % c for c in key).encode())        # everything escaped
    out.add("".join("%%%02x" % c for c in key).encode())        # lower-case hex
    out.add(canon(key).lower().encode() if "%" in canon(key) else b"")
    raw = b""
    for c in key:
        ch = bytes([c])
        if c > 0x20 and c < 0x7f and ch not in b"%?# \"<>\\^`{|}" or c >= 0x80:
            raw += ch
        else:
            raw += b"%%%02X" % c
    out.add(raw)                                                 # raw where a target allows it
    out.add(canon(key).replace("/", "%2F").encode())
    out.discard(b""); out.discard(canon(key).encode())
    return sorted(out)

def main():
    srv = h.Server(args=sys.argv[2:]); srv.start()
    try:
        with h.Conn(srv.port) as c:
            for i, key in enumerate(KEYS):
                cs = canon(key)
                r = c.request("PUT", ("/v1/kv/" + cs).encode(), body=b"v%d" % i)
                verdict(r.status in (201, 204), f"PUT canonical {cs!r} -> {r.status}")
                for sp in spellings(key):
                    for method, extra in (("GET", []), ("GET", [("If-None-Match", '"0"')]), ("HEAD", []),
                                          ("PUT", []), ("DELETE", []), ("GET?q", [])):
                        path = b"/v1/kv/" + sp + (b"?x=1" if method == "GET?q" else b"")
                        m = "GET" if method == "GET?q" else method
                        body = b"WRONG" if m == "PUT" else None
                        with h.Conn(srv.port) as c2:
                            try:
                                r = c2.request(m, path, body=body, headers=extra)
                            except h.ConnectionClosed as e:
                                verdict(False, f"{m} {path!r}: no answer {e}"); continue
                        want = "/v1/kv/" + cs + ("?x=1" if method == "GET?q" else "")
                        ok = r.status == 308 and r.header("Location") == want
                        verdict(ok, f"{method}{'+INM' if extra else ''} {path!r} -> {r.status} {r.header('Location')!r} (want 308 {want!r})")
                r = c.request("GET", ("/v1/kv/" + cs).encode())
                verdict(r.status == 200 and r.body == b"v%d" % i, f"GET canonical {cs!r} -> {r.status} {r.body[:10]!r} (no spelling overwrote or deleted it)")
    finally:
        srv.stop(); srv.cleanup()
    summary()

main()
