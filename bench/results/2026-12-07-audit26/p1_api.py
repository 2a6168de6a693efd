#!/usr/bin/env python3
"""Audit probe: API semantics from outside (conditional requests, HEAD == GET,
metadata round trip, key rules, problem+json errors). Usage: p1_api.py KINGX_BIN [extra args]"""
import json, os, socket, subprocess, sys, tempfile, time, shutil

BIN = sys.argv[1]
EXTRA = sys.argv[2:]

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def raw(port, data, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b: break
            out += b
            if is_complete(out, data): break
    except socket.timeout:
        pass
    s.close()
    return out

def is_complete(out, req):
    i = out.find(b"\r\n\r\n")
    if i < 0: return False
    head = out[:i].decode("latin1").lower()
    status = int(head.split()[1])
    if req.startswith(b"HEAD") or status in (204, 304) or status < 200:
        return True
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            return len(out) - i - 4 >= int(line.split(":")[1])
    return False

def req(port, method, path, body=None, headers=()):
    h = [f"{method} {path} HTTP/1.1", "Host: x", "Connection: close"]
    h += list(headers)
    if body is not None:
        h.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(h) + "\r\n\r\n").encode("latin1") + (body or b"")
    out = raw(port, data)
    i = out.find(b"\r\n\r\n")
    head = out[:i].decode("latin1").split("\r\n")
    status = int(head[0].split()[1])
    hdrs = []
    for l in head[1:]:
        k, v = l.split(":", 1); hdrs.append((k.strip().lower(), v.strip()))
    return status, hdrs, out[i+4:]

def H(hdrs, name):
    return [v for k, v in hdrs if k == name]

results = []
def rec(name, ok, detail):
    results.append((name, ok, detail))
    print(("HELD " if ok else "FALSE") + " | " + name + " | " + detail, flush=True)

def main():
    d = tempfile.mkdtemp(prefix="audit-p1-", dir="/tmp")
    port = free_port()
    p = subprocess.Popen([BIN, "--listen", f"127.0.0.1:{port}", "--data", d + "/data", "--workers", "1"] + EXTRA,
                         stdout=open(d + "/out", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(100):
            try:
                if req(port, "GET", "/readyz")[0] == 200: break
            except OSError: pass
            time.sleep(0.1)
        run(port)
    finally:
        p.terminate(); p.wait(20); shutil.rmtree(d, ignore_errors=True)

def run(port):
    st, h, b = req(port, "PUT", "/v1/kv/a", b"hello", ["Content-Type: text/plain; charset=utf-8"])
    etag = H(h, "etag")[0]
    rec("PUT 201 + ETag", st == 201 and etag.startswith('"'), f"{st} {etag}")
    # HEAD == GET headers
    for key, body, ct in [("a", None, None), ("big", b"x" * 5000, None), ("cz", (b"abcdefgh" * 20000), "text/x-c"),
                          ("empty", b"", None)]:
        if body is not None:
            hh = [f"Content-Type: {ct}"] if ct else []
            req(port, "PUT", "/v1/kv/" + key, body, hh)
        sg, hg, bg = req(port, "GET", "/v1/kv/" + key)
        sh, hh2, bh = req(port, "HEAD", "/v1/kv/" + key)
        drop = {"date", "x-request-id"}
        a = sorted((k, v) for k, v in hg if k not in drop)
        c = sorted((k, v) for k, v in hh2 if k not in drop)
        rec(f"HEAD headers == GET headers ({key})", sg == sh and a == c and bh == b"",
            f"GET {sg} {a} / HEAD {sh} {c} body={len(bh)}")
        if body is not None:
            rec(f"GET exact bytes ({key})", bg == body and int(H(hg, 'content-length')[0]) == len(body), f"len {len(bg)} vs {len(body)}")
    # 404 HEAD vs GET
    sg, hg, bg = req(port, "GET", "/v1/kv/nosuch")
    sh, hh2, bh = req(port, "HEAD", "/v1/kv/nosuch")
    a = sorted((k, v) for k, v in hg if k not in ("date", "x-request-id"))
    c = sorted((k, v) for k, v in hh2 if k not in ("date", "x-request-id"))
    rec("HEAD 404 headers == GET 404 headers", a == c and sg == sh == 404, f"{a} / {c}")
    # Content-Type round trip
    st, h, b = req(port, "GET", "/v1/kv/a")
    rec("Content-Type round trip", H(h, "content-type") == ["text/plain; charset=utf-8"], str(H(h, "content-type")))
    rec("default Content-Type", H(req(port, "GET", "/v1/kv/big")[1], "content-type") == ["application/octet-stream"], "")
    ct255 = "a/" + "b" * 253
    st, h, b = req(port, "PUT", "/v1/kv/ct255", b"v", ["Content-Type: " + ct255])
    st2, h2, _ = req(port, "GET", "/v1/kv/ct255")
    rec("255-byte Content-Type stored", st == 201 and H(h2, "content-type") == [ct255], f"{st} {H(h2,'content-type')[:1]!r:.40}")
    st, h, b = req(port, "PUT", "/v1/kv/ct256", b"v", ["Content-Type: " + ct255 + "c"])
    rec("256-byte Content-Type 431 naming limit", st == 431 and b"255" in b and H(h, "content-type") == ["application/problem+json"], f"{st} {b[:200]!r}")
    # conditional requests
    st, h, b = req(port, "GET", "/v1/kv/a", headers=[f"If-None-Match: {etag}"])
    rec("If-None-Match match GET -> 304 with ETag", st == 304 and H(h, "etag") == [etag] and b == b"", f"{st} {h}")
    st, h, b = req(port, "HEAD", "/v1/kv/a", headers=[f"If-None-Match: {etag}"])
    rec("If-None-Match match HEAD -> 304", st == 304, f"{st}")
    st, h, b = req(port, "GET", "/v1/kv/a", headers=[f'If-None-Match: "1", {etag}'])
    rec("If-None-Match list GET -> 304", st == 304, f"{st}")
    st, h, b = req(port, "GET", "/v1/kv/a", headers=[f"If-None-Match: W/{etag}"])
    rec("If-None-Match weak W/ (weak comparison, RFC 9110 13.1.2) -> 304", st == 304, f"{st}")
    st, h, b = req(port, "GET", "/v1/kv/a", headers=["If-None-Match: *"])
    rec("If-None-Match * on existing GET -> 304", st == 304, f"{st}")
    st, h, b = req(port, "GET", "/v1/kv/nosuch", headers=["If-None-Match: *"])
    rec("If-None-Match * on absent GET -> 404", st == 404, f"{st}")
    st, h, b = req(port, "GET", "/v1/kv/a", headers=['If-None-Match: "999999"'])
    rec("If-None-Match mismatch GET -> 200", st == 200, f"{st}")
    st, h, b = req(port, "GET", "/v1/kv/a", headers=['If-Match: "999999"'])
    rec("If-Match mismatch GET -> 412 (RFC 9110 13.1.1)", st == 412, f"{st} {b[:120]!r}")
    st, h, b = req(port, "GET", "/v1/kv/a", headers=[f'If-Match: {etag}'])
    rec("If-Match match GET -> 200", st == 200, f"{st}")
    st, h, b = req(port, "PUT", "/v1/kv/a", b"x", headers=['If-Match: "999999"'])
    rec("If-Match mismatch PUT -> 412 problem+json", st == 412 and H(h, "content-type") == ["application/problem+json"], f"{st} {b[:160]!r}")
    st, h, b = req(port, "PUT", "/v1/kv/a", b"x2", headers=[f'If-Match: W/{etag}'])
    rec("If-Match weak etag on PUT -> 412 (strong comparison)", st == 412, f"{st}")
    st, h, b = req(port, "PUT", "/v1/kv/a", b"x2", headers=['If-Match: *'])
    rec("If-Match * on existing PUT -> 2xx", st in (200, 204), f"{st}")
    st, h, b = req(port, "PUT", "/v1/kv/nosuch2", b"x2", headers=['If-Match: *'])
    rec("If-Match * on absent PUT -> 412", st == 412, f"{st}")
    st, h, b = req(port, "PUT", "/v1/kv/a", b"x3", headers=['If-None-Match: *'])
    rec("If-None-Match * on existing PUT -> 412", st == 412, f"{st}")
    cur = H(req(port, "GET", "/v1/kv/a")[1], "etag")[0]
    st, h, b = req(port, "PUT", "/v1/kv/a", b"x3", headers=[f'If-None-Match: {cur}'])
    rec("If-None-Match etag (matching) on PUT -> 412", st == 412, f"{st}")
    st, h, b = req(port, "PUT", "/v1/kv/a", b"x4", headers=[f'If-Match: "1", {cur}'])
    rec("If-Match list containing current PUT -> 2xx", st in (200, 204), f"{st}")
    cur = H(req(port, "GET", "/v1/kv/a")[1], "etag")[0]
    st, h, b = req(port, "DELETE", "/v1/kv/a", headers=['If-Match: "1"'])
    rec("If-Match mismatch DELETE -> 412", st == 412, f"{st}")
    st, h, b = req(port, "DELETE", "/v1/kv/nosuch", headers=['If-Match: *'])
    rec("If-Match * DELETE absent -> 412", st == 412, f"{st}")
    st, h, b = req(port, "DELETE", "/v1/kv/a", headers=['If-None-Match: *'])
    rec("If-None-Match * DELETE existing -> 412", st == 412, f"{st}")
    st, h, b = req(port, "DELETE", "/v1/kv/a", headers=[f'If-Match: {cur}'])
    rec("If-Match match DELETE -> 204", st == 204, f"{st}")
    st, h, b = req(port, "PUT", "/v1/kv/d", b"x", headers=['If-Match: garbage'])
    rec("If-Match malformed -> 400 problem or 412", st in (400, 412), f"{st} {b[:160]!r}")
    st, h, b = req(port, "PUT", "/v1/kv/d", b"x", headers=['If-Match: "1"', 'If-Match: "2"'])
    rec("If-Match twice (list across lines) -> 412 not 2xx", st in (400, 412), f"{st}")
    # keys
    k1024 = "k" * 1024
    st, h, b = req(port, "PUT", "/v1/kv/" + k1024, b"v")
    rec("1024-byte key accepted", st == 201, f"{st}")
    st, h, b = req(port, "PUT", "/v1/kv/" + k1024 + "k", b"v")
    rec("1025-byte key 414 problem+json naming limit", st == 414 and b"1024" in b and H(h, "content-type") == ["application/problem+json"], f"{st} {b[:200]!r}")
    st, h, b = req(port, "PUT", "/v1/kv/" + "%41" * 1024, b"v")
    rec("1024-byte key percent-encoded (3072 chars) -> 308 to canonical", st == 308, f"{st} {H(h,'location')[:1]!r:.60}")
    st, h, b = req(port, "PUT", "/v1/kv/%FF%00", b"bin")
    st2, h2, b2 = req(port, "GET", "/v1/kv/%FF%00")
    rec("binary key %FF%00 round trip", st == 201 and b2 == b"bin", f"{st} {st2}")
    st, h, b = req(port, "GET", "/v1/kv/%zz")
    rec("invalid % escape -> 400 problem+json", st == 400 and H(h, "content-type") == ["application/problem+json"], f"{st} {b[:160]!r}")
    st, h, b = req(port, "GET", "/v1/kv/a%2")
    rec("truncated % escape -> 400", st == 400, f"{st} {b[:160]!r}")
    st, h, b = req(port, "GET", "/v1/kv/a?x=1")
    rec("query on a key GET", st in (400, 404), f"{st} {b[:160]!r}")
    st, h, b = req(port, "GET", "/v1/kv//")
    rec("key '/' GET -> 404 (valid key)", st == 404, f"{st} {b[:160]!r}")
    st, h, b = req(port, "PUT", "/v1/kv/x%2fy", b"v")
    rec("lowercase %2f -> 308 Location canonical", st == 308 and H(h, "location") == ["/v1/kv/x/y"], f"{st} {H(h,'location')}")
    st, h, b = req(port, "PUT", "/v1/kv/a+b", b"v")
    rec("'+' in key path: 308 to %2B (not unreserved)", st == 308 and H(h, "location") == ["/v1/kv/a%2Bb"], f"{st} {H(h,'location')}")
    st, h, b = req(port, "PUT", "/v1/kv/a%20b", b"v")
    st2, h2, b2 = req(port, "GET", "/v1/kv/a%20b")
    rec("space key a%20b", st == 201 and st2 == 200, f"{st} {st2}")
    # errors are problem+json
    for m, path, hh, body, want in [("PATCH", "/v1/kv/a", [], None, 501), ("POST", "/v1/kv/a", [], b"", 405),
                            ("PUT", "/v1/kv/a", ["Content-Encoding: gzip"], b"x", 415),
                            ("PUT", "/v1/kv/a", ["Content-Encoding: identity"], b"x", 201),
                            ("PUT", "/v1/kv/b", ["Content-Encoding: IDENTITY"], b"x", 201),
                            ("PUT", "/v1/kv/b", ["Content-Encoding: gzip, identity"], b"x", 415),
                            ("GET", "/v2/x", [], None, 404), ("GET", "/admin/backup", [], None, 404),
                            ("DELETE", "/v1/kv/", [], None, 405)]:
        st, h, b = req(port, m, path, body, hh)
        ok = st == want and (st < 400 or H(h, "content-type") == ["application/problem+json"])
        if st >= 400:
            try: j = json.loads(b); ok = ok and "status" in j and j["status"] == st and "title" in j
            except Exception: ok = False
        rec(f"{m} {path} {hh} -> {want} problem+json", ok, f"{st} {H(h,'content-type')} {b[:140]!r}")
    out = raw(port, b"PUT /v1/kv/toolong HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n")
    st = int(out.split()[1]); b = out[out.find(b"\r\n\r\n") + 4:]
    rec("PUT Content-Length > max-value-bytes -> 413 naming limit", st == 413 and b"67108864" in b, f"{st} {b[:200]!r}")
    st, h, b = req(port, "OPTIONS", "*")
    rec("OPTIONS * 200 Allow", st == 200 and H(h, "allow"), f"{st} {H(h,'allow')}")
    st, h, b = req(port, "OPTIONS", "/v1/kv/a")
    rec("OPTIONS /v1/kv/a", st in (200, 204, 405, 501), f"{st} {H(h,'allow')} {b[:100]!r}")
    st, h, b = req(port, "PUT", "/v1/kv/ctl", b"x", ["Content-Type: text/pl\x7fain"])
    st2, h2, b2 = req(port, "GET", "/v1/kv/ctl")
    rec("Content-Type with DEL byte: refused or echoed verbatim", st >= 400 or H(h2, 'content-type') == ["text/pl\x7fain"], f"{st} {H(h2,'content-type')}")
    st, h, b = req(port, "PUT", "/v1/kv/ct2", b"x", ["Content-Type: a/b", "Content-Type: c/d"])
    rec("two Content-Type fields -> 400", st == 400, f"{st} {b[:120]!r}")
    st, h, b = req(port, "PUT", "/v1/kv/ct3", b"x", ["Content-Type:"])
    st2, h2, b2 = req(port, "GET", "/v1/kv/ct3")
    rec("empty Content-Type: stored default or empty", st == 201, f"{st} GET ct={H(h2,'content-type')}")
    nf = sum(1 for r in results if not r[1])
    print(f"{len(results)} probes, {nf} FALSE")

main()
