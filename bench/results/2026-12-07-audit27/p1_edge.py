#!/usr/bin/env python3
"""Probe: README "How strict the HTTP edge is", line by line, raw bytes.

Each case is sent three ways: whole in one write; in small pieces (1..7
bytes, 1 ms apart); and pipelined between two `GET /healthz` requests in one
write. For each, the status of the case's answer and whether the connection
stays open (a following request answered) or closes, against the README's
table. Usage: p1_edge.py KINGX_BIN [extra kingx args...]
"""
import os, random, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tests/blackbox"))
os.environ["KINGX_BIN"] = sys.argv[1]
import kingx_harness as h

H = b"Host: x"
def req(line, *fields, body=b""):
    return line + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body

CASES = []  # (name, bytes, expected status, expected "keep"/"close")
def case(name, data, status, conn):
    CASES.append((name, data, status, conn))

for m in (b"PATCH", b"PROPFIND", b"BREW"):
    case(f"{m.decode()} 501 body skipped kept", req(m + b" /v1/kv/a HTTP/1.1", H, b"Content-Length: 5", body=b"hello"), 501, "keep")
case("PATCH chunked body skipped kept", req(b"PATCH /v1/kv/a HTTP/1.1", H, b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\n\r\n"), 501, "keep")
for v in range(2, 10):
    case(f"HTTP/1.{v} served as 1.1", req(b"GET /healthz HTTP/1.%d" % v, H), 200, "keep")
for v in (b"HTTP/2.0", b"HTTP/3.0", b"HTTP/0.9", b"HTTP/9.9"):
    case(f"{v.decode()} 505", req(b"GET /healthz " + v, H), 505, "close")
for p in (b"RTSP/1.0", b"ICE/1.0"):
    case(f"{p.decode()} 400", req(b"GET /healthz " + p, H), 400, "close")
case("GET * 400 (README: no close said; a framed request)", req(b"GET * HTTP/1.1", H), 400, "keep")
case("OPTIONS * 200", req(b"OPTIONS * HTTP/1.1", H), 200, "keep")
# header line: name ": " value; README: over 8 KiB (--max-header-line-bytes) -> 431
def field_of(n):  # a field line of n bytes (name, colon, value)
    return b"X-Pad: " + b"a" * (n - 7)
case("header line 8192 B accepted", req(b"GET /healthz HTTP/1.1", H, field_of(8192)), 200, "keep")
case("header line 8193 B 431", req(b"GET /healthz HTTP/1.1", H, field_of(8193)), 431, "close")
# whole head: request line + fields + empty line over 16 KiB -> 431
def head_of(n):
    base = req(b"GET /healthz HTTP/1.1", H, b"X-P1: " + b"a" * 6000, b"X-P2: " + b"a" * 6000, b"X-P3: ")
    pad = n - len(base)
    return req(b"GET /healthz HTTP/1.1", H, b"X-P1: " + b"a" * 6000, b"X-P2: " + b"a" * 6000, b"X-P3: " + b"b" * pad)
case("head 16384 B accepted", head_of(16384), 200, "keep")
case("head 16385 B 431", head_of(16385), 431, "close")
def line_of(n):  # request line of n bytes without CRLF
    pre = b"GET /healthz?"
    return pre + b"a" * (n - len(pre) - len(b" HTTP/1.1")) + b" HTTP/1.1"
case("request line 8192 B accepted", req(line_of(8192), H), 200, "keep")
case("request line 8193 B 414", req(line_of(8193), H), 414, "close")
case("100 fields accepted", req(b"GET /healthz HTTP/1.1", H, *[b"X-F%d: v" % i for i in range(99)]), 200, "keep")
case("101 fields 431", req(b"GET /healthz HTTP/1.1", H, *[b"X-F%d: v" % i for i in range(100)]), 431, "close")
for name, host in ((b"empty", b"Host:"), (b"empty sp", b"Host: "), (b"slash", b"Host: /"), (b"a/b", b"Host: a/b"),
                   (b"dotdot", b"Host: .."), (b"space", b"Host: a b"), (b"tab", b"Host: a\tb"),
                   (b"ctl 01", b"Host: a\x01b"), (b"DEL", b"Host: a\x7fb"), (b"NUL", b"Host: a\x00b")):
    case(f"Host {name.decode()} 400 close (fast form)", req(b"GET /healthz HTTP/1.1", host), 400, "close")
    case(f"Host {name.decode()} 400 close (llhttp form)", req(b"GET /healthz HTTP/1.1", host, b"X-Other: 1"), 400, "close")
case("no Host HTTP/1.1 400", req(b"GET /healthz HTTP/1.1"), 400, "close")
case("two Host 400", req(b"GET /healthz HTTP/1.1", H, H), 400, "close")
for name, t in ((b"tab", b"/v1/kv/a\tb"), (b"ctl 01", b"/v1/kv/a\x01b"), (b"DEL", b"/v1/kv/a\x7fb"), (b"NUL", b"/v1/kv/a\x00b"),
                (b"ctl 1f", b"/v1/kv/a\x1fb"), (b"VT", b"/v1/kv/a\x0bb"), (b"FF", b"/v1/kv/a\x0cb")):
    case(f"target {name.decode()} 400 close", req(b"GET " + t + b" HTTP/1.1", H), 400, "close")
case("target space 400 close", req(b"GET /v1/kv/a b HTTP/1.1", H), 400, "close")
case("bare LF ending header line 400", b"GET /healthz HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n", 400, "close")
case("bare LF ending last header line 400", b"GET /healthz HTTP/1.1\r\nHost: x\n\r\n", 400, "close")
case("bare LF request line accepted", b"GET /healthz HTTP/1.1\nHost: x\r\n\r\n", 200, "keep")
case("obs-fold 400", req(b"GET /healthz HTTP/1.1", H, b"X-A: 1", b" 2"), 400, "close")
case("obs-fold tab 400", req(b"GET /healthz HTTP/1.1", H, b"X-A: 1", b"\t2"), 400, "close")
for te in (b"gzip", b"chunked, gzip", b"gzip, chunked", b"identity", b"Chunked ", b"chunkedx"):
    case(f"TE {te.decode()!r} 501", req(b"PUT /v1/kv/te HTTP/1.1", H, b"Transfer-Encoding: " + te, body=b"0\r\n\r\n"), 501, "close")
case("CL + TE 400", req(b"PUT /v1/kv/clte HTTP/1.1", H, b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400, "close")
case("TE + CL 400", req(b"PUT /v1/kv/clte HTTP/1.1", H, b"Transfer-Encoding: chunked", b"Content-Length: 5", body=b"0\r\n\r\n"), 400, "close")
for ws in (b" ", b"\t", b"  \t"):
    case(f"Connection: close+{ws!r} closes", req(b"GET /healthz HTTP/1.1", H, b"Connection: close" + ws), 200, "close")
case("Connection: CLOSE closes", req(b"GET /healthz HTTP/1.1", H, b"Connection: CLOSE"), 200, "close")
case("Connection: keep-alive, close closes", req(b"GET /healthz HTTP/1.1", H, b"Connection: keep-alive, close"), 200, "close")
case("HTTP/1.0 no keep-alive closes", req(b"GET /healthz HTTP/1.0"), 200, "close")
# the framing check (bare CR in chunk lines; the two bytes after chunk data)
CH = (b"PUT /v1/kv/ch HTTP/1.1", H, b"Transfer-Encoding: chunked")
case("chunk-size bare CR 400", req(*CH, body=b"5\rhello\r\n0\r\n\r\n"), 400, "close")
case("chunk-ext bare CR 400", req(*CH, body=b"5;a\rb\r\nhello\r\n0\r\n\r\n"), 400, "close")
case("last-chunk bare CR 400", req(*CH, body=b"5\r\nhello\r\n0\r\r\n"), 400, "close")
case("trailer bare CR 400", req(*CH, body=b"5\r\nhello\r\n0\r\nX: a\rb\r\n\r\n"), 400, "close")
case("after chunk data XX 400", req(*CH, body=b"5\r\nhelloXX0\r\n\r\n"), 400, "close")
case("after chunk data \\r only 400", req(*CH, body=b"5\r\nhello\r0\r\n\r\n"), 400, "close")
case("header bare CR 400", req(b"GET /healthz HTTP/1.1", H, b"X-A: 1\rX-B: 2"), 400, "close")
case("chunked PUT ok 201/204", req(*CH, body=b"5\r\nhello\r\n0\r\n\r\n"), (201, 204), "keep")

OK = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

def run(port, data, mode):
    c = h.Conn(port, timeout=10)
    try:
        if mode == "whole":
            c.send(data)
        elif mode == "pieces":
            rng = random.Random(len(data))
            i = 0
            while i < len(data):
                n = rng.randint(1, 7) if len(data) < 2000 else rng.randint(200, 900)
                c.send(data[i:i + n]); i += n
                time.sleep(0.001)
        else:
            c.send(OK + data + OK)
            r0 = c.read_response()
            if r0.status != 200:
                return ("first", r0.status, "")
        try:
            r = c.read_response(head=False)
        except h.ConnectionClosed as e:
            return ("noanswer", None, str(e))
        conn_hdr = (r.header("Connection") or "").lower()
        if conn_hdr == "close":
            # announced: the server must close (it may linger reading first)
            t0 = time.monotonic()
            while True:
                w = c.wait_closed(timeout=12)
                if w == "closed":
                    return (r.status, "close", conn_hdr)
                if w == "open":
                    return (r.status, "announced close, still open after 12 s", conn_hdr)
                if mode == "pipelined":   # bytes of the next answer: not closed
                    return (r.status, f"answered after close: {w[:40]!r}", conn_hdr)
                c.buf = b""
        if mode != "pipelined":
            c.send(OK)
        try:
            r2 = c.read_response()
            return (r.status, "keep" if r2.status == 200 else f"next{r2.status}", conn_hdr)
        except h.ConnectionClosed:
            return (r.status, "closed unannounced", conn_hdr)
    finally:
        c.close()

def main():
    extra = sys.argv[2:]
    only = os.environ.get("FROM")
    if only:
        i = [n for n, *_ in CASES].index(only)
        del CASES[:i]
    srv = h.Server(args=extra)
    srv.start()
    bad = 0
    try:
        for name, data, status, conn in CASES:
            for mode in ("whole", "pieces", "pipelined"):
                t0 = time.monotonic()
                got = run(srv.port, data, mode) + (f"{time.monotonic() - t0:.1f}s",)
                st_ok = got[0] in (status if isinstance(status, tuple) else (status,))
                ok = st_ok and got[1] == conn
                bad += not ok
                print(f"{'HELD ' if ok else 'FALSE'} {mode:9} {name}: want {status}/{conn} got {got}", flush=True)
        if not srv.alive():
            print("FALSE server died"); bad += 1
    finally:
        srv.stop(); srv.cleanup()
    print(f"{len(CASES) * 3 - bad} held, {bad} false")

main()
