"""Request smuggling through the real binary: the message-boundary families
of llhttp 8.1.0 (Debian 12) and the smaller protocol points at the edge.

Each smuggling vector is a PUT (or GET) whose framing llhttp 8.1 reads one
way and RFC 9112 another, followed on the same connection by a DELETE of a
victim key. kingx must answer the vector 400, close, and never run the
DELETE: the victim's value is still there afterwards. Each vector is sent
whole and one byte at a time, on both serving models. A control group with
correct framing proves the DELETE would run if the framing were accepted.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_smuggling.py [--model threads]
"""

import sys

from kingx_harness import Conn, ConnectionClosed, Server, check, http, key_path, require_bin, run_cases

S = None
VICTIM = key_path("smuggling-victim")
VALUE = b"the victim's value"

PUT = b"PUT /v1/kv/smuggling-carrier HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
SMUGGLED = b"DELETE " + VICTIM.encode() + b" HTTP/1.1\r\nHost: h\r\n\r\n"

FAMILIES = [
    # 1. a bare CR taken as the end of a chunk-size, chunk-ext, last-chunk or trailer line
    ("chunk-size CR + byte", PUT + b"3\rXabc\r\n0\r\n\r\n"),
    ("chunk-size CR CR", PUT + b"5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n"),
    ("chunk-ext CR + byte", PUT + b"3;a=b\rXabc\r\n0\r\n\r\n"),
    ("last-chunk CR + byte", PUT + b"3\r\nabc\r\n0\rX\r\n"),
    ("trailer section CR + byte", PUT + b"3\r\nabc\r\n0\r\n\rX"),
    ("trailer empty value CR + byte", PUT + b"3\r\nabc\r\n0\r\nX-T:\rXY: 1\r\n\r\n"),
    # 2. the CRLF after chunk data never checked
    ("chunk data + two bytes", PUT + b"3\r\nabcXY0\r\n\r\n"),
    ("chunk data + LF LF", PUT + b"3\r\nabc\n\n0\r\n\r\n"),
    # 3. a bare CR in the header section
    ("head end CR + byte", b"GET /healthz HTTP/1.1\r\nHost: h\r\n\rX"),
    ("empty value CR + byte", b"GET /healthz HTTP/1.1\r\nHost: h\r\nX-A:\rZ\r\n\r\n"),
    ("empty value CR swallowing a T", b"POST /admin/compact HTTP/1.1\r\nHost: h\r\nX:\rXTransfer-Encoding: chunked"
                                      b"\r\n\r\n0\r\n\r\n"),
]

CONTROL = [
    ("chunked", PUT + b"3\r\nabc\r\n0\r\n\r\n"),
    ("chunked with extension and trailer", PUT + b"3;a=\"b\"\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"),
    ("empty header value", b"GET /healthz HTTP/1.1\r\nHost: h\r\nX-A:\r\n\r\n"),
]


def put_victim():
    r = http(S.port, "PUT", VICTIM, VALUE)
    check(r.status in (201, 204), f"PUT victim: {r}")


def victim_alive():
    r = http(S.port, "GET", VICTIM)
    return r.status == 200 and r.body == VALUE


def send(conn, data, bytewise):
    if not bytewise:
        conn.send(data)
        return
    for i in range(len(data)):
        try:
            conn.send(data[i:i + 1])
        except OSError:
            return  # the server closed after its 400: the rest is never read


def responses_until_close(conn):
    """Every response on `conn` until the server closes it."""
    out = []
    while True:
        try:
            out.append(conn.read_response())
        except ConnectionClosed:
            return out


def test_each_family_is_refused_and_the_request_behind_it_never_runs():
    put_victim()
    for name, vector in FAMILIES:
        for bytewise in (False, True):
            with Conn(S.port) as c:
                send(c, vector + SMUGGLED, bytewise)
                got = responses_until_close(c)
            how = "byte by byte" if bytewise else "whole"
            check(len(got) == 1, f"{name} ({how}): exactly one response, then close: {got}")
            check(got[0].status == 400, f"{name} ({how}): 400 expected: {got[0]}")
            check((got[0].header("Connection") or "").lower() == "close", f"{name} ({how}): Connection: close")
            check(victim_alive(), f"{name} ({how}): the smuggled DELETE ran")


def test_control_group_runs_both_requests():
    for name, vector in CONTROL:
        put_victim()
        with Conn(S.port) as c:
            c.send(vector + SMUGGLED)
            first = c.read_response()
            second = c.read_response()
        check(first.status < 300, f"{name}: first request answered {first}")
        check(second.status == 204, f"{name}: the DELETE behind a well-framed request runs: {second}")
        check(not victim_alive(), f"{name}: the victim is deleted")


def test_protocol_points_at_the_edge():
    with Conn(S.port) as c:
        c.send(b"GET /healthz HTTP/1.2\r\nHost: h\r\n\r\n")
        r = c.read_response()
        check(r.status == 200 and r.version == "HTTP/1.1", f"HTTP/1.2 is served as HTTP/1.1: {r}")
        c.send(b"BREW /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
        r = c.read_response()
        check(r.status == 501, f"an unknown method gets 501: {r}")
        r = c.request("OPTIONS", "*")
        check(r.status == 200 and "PUT" in (r.header("Allow") or ""), f"OPTIONS * lists the methods: {r}")
        r = c.request("GET", "*")
        check(r.status == 400, f"the asterisk form is for OPTIONS only: {r}")
        c.send(b"GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\t\r\n\r\n")
        r = c.read_response()
        check(r.status == 200 and r.header("Connection") == "close", f"close + tab is honoured: {r}")
        check(not responses_until_close(c), "the connection closes after Connection: close")
    for line in (b"GET /healthz RTSP/1.0\r\nHost: h\r\n\r\n", b"GET /healthz ICE/1.0\r\nHost: h\r\n\r\n",
                 b"GET /v1/kv/a\tb HTTP/1.1\r\nHost: h\r\n\r\n", b"GET /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n"):
        with Conn(S.port) as c:
            c.send(line)
            got = responses_until_close(c)
            check(len(got) == 1 and got[0].status == 400, f"{line!r}: 400 and close expected: {got}")
    with Conn(S.port) as c:
        c.send(b"HEAD /healthz HTTP/1.1\r\nHost: h\r\n\rX")
        r = c.read_response(head=True)
        check(r.status == 400, f"a refused HEAD: {r}")
        check(not c.buf and not responses_until_close(c), "a refused HEAD carries no body")


def main():
    global S
    require_bin()
    S = Server(sys.argv[1:])
    try:
        S.start()
        status = run_cases("request smuggling and protocol edge",
                           [(n[5:], f) for n, f in globals().items() if n.startswith("test_")], S)
    finally:
        S.cleanup()
    sys.exit(status)


if __name__ == "__main__":
    main()
