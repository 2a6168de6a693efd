#!/usr/bin/env python3
"""audit3 probe 1: the access log.

README "Logs": "an optional access log (--access-log FILE, nginx's combined format or JSON lines)";
"X-Request-Id is echoed or generated (32 hex digits, never reused)"; "Every response is logged with its
request id, also those the HTTP core writes itself (400, 404 outside the API, 405, 408, 413, 414, 417,
431, 501, 505)".

Sends hostile client strings (invalid UTF-8, quotes, backslashes, control bytes, DEL) in the request
target, User-Agent, Referer and X-Request-Id, and one request for each refusal of the HTTP core; then
parses every JSON line with json.loads (a strict parser of the format) and checks every status and
request id is there.

Usage: KINGX_BIN=... python3 p1_logs.py [extra kingx flags, e.g. --model threads --threads 8]
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "blackbox"))
import kingx_harness as h  # noqa: E402


def raw(port, data, wait=0.3, timeout=3.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    end = time.monotonic() + wait
    try:
        while time.monotonic() < end + timeout:
            b = s.recv(65536)
            if not b:
                break
            out += b
            if b"\r\n\r\n" in out and time.monotonic() > end:
                break
    except socket.timeout:
        pass
    s.close()
    return out


def main():
    extra = sys.argv[1:]
    results = []
    for fmt in ("json", "combined"):
        srv = h.Server(args=["--workers", "1", "--access-log-format", fmt, "--header-timeout-ms", "1000",
                             "--max-value-bytes", "1M"] + extra)
        srv.start()
        p = srv.port
        ids = {}
        hostile = [b"\xff\xfe", b"a\"b", b"a\\b", b"\x01\x1f", b"\x7f", b"caf\xc3\xa9", b"\xc3", b"}{\"x\":1"]
        for i, v in enumerate(hostile):
            rid = b"rid-%d-" % i + v
            req = (b"GET /v1/kv/x HTTP/1.1\r\nHost: h\r\nUser-Agent: ua" + v + b"\r\nReferer: r" + v +
                   b"\r\nX-Request-Id: " + rid + b"\r\n\r\n")
            raw(p, req)
        cases = {
            400: b"GARBAGE\r\n\r\n",
            404: b"GET /nope HTTP/1.1\r\nHost: h\r\nX-Request-Id: want404\r\n\r\n",
            405: b"PUT /v1/kv/ HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nX-Request-Id: want405\r\n\r\n",
            408: b"GET /v1/kv/x HTTP/1.1\r\nHost: h\r\n",
            413: b"PUT /v1/kv/big HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\nX-Request-Id: want413\r\n\r\n",
            414: b"GET /v1/kv/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
            417: b"PUT /v1/kv/e HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\nX-Request-Id: want417\r\n\r\nx",
            431: b"GET /v1/kv/x HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
            501: b"BREW /v1/kv/x HTTP/1.1\r\nHost: h\r\nX-Request-Id: want501\r\n\r\n",
            505: b"GET /v1/kv/x HTTP/2.0\r\nHost: h\r\n\r\n",
        }
        got_status = {}
        for st, req in cases.items():
            out = raw(p, req, wait=1.6 if st == 408 else 0.3)
            line = out.split(b"\r\n", 1)[0]
            rid = None
            for hl in out.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
                if hl.lower().startswith(b"x-request-id:"):
                    rid = hl.split(b":", 1)[1].strip().decode()
            got_status[st] = (line.decode("latin-1"), rid)
        srv.signal(__import__("signal").SIGUSR1)  # flush is per process; a stop flushes too
        srv.stop()
        data = open(srv.access_log, "rb").read()
        lines = data.split(b"\n")[:-1]
        bad = []
        parsed = []
        for ln in lines:
            if fmt == "json":
                try:
                    parsed.append(json.loads(ln.decode("utf-8")))
                except (UnicodeDecodeError, ValueError) as e:
                    bad.append((ln, repr(e)))
            else:
                try:
                    ln.decode("ascii")
                except UnicodeDecodeError as e:
                    bad.append((ln, repr(e)))
        print(f"== format {fmt}: {len(lines)} lines, {len(bad)} unparseable")
        for ln, e in bad[:12]:
            print("   BAD", ln[:300], e)
        missing = []
        for st, (line, rid) in got_status.items():
            ok_status = line.startswith(f"HTTP/1.1 {st}")
            logged = rid is not None and any(rid.encode() in ln for ln in lines)
            print(f"   {st}: answer {line!r} request id {rid} logged={logged}")
            if not ok_status or not logged:
                missing.append(st)
        results.append((fmt, len(bad), missing))
        srv.cleanup()
    verdict = all(b == 0 and not m for _, b, m in results)
    print("RESULT", "HELD" if verdict else "FALSE", results)


if __name__ == "__main__":
    main()
