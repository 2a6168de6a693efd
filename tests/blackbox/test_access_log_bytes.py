"""The access log's body bytes and request time are those of the response as
it was sent, nginx's $body_bytes_sent and $request_time: the line is written
when the response ends, whether its last byte was handed to the kernel or the
connection ended first.

- A full read logs the whole body; HEAD logs 0; a problem+json refusal and a
  listing log their body's length.
- A client that reads nothing, or N bytes and then nothing, until the send
  timeout closes the connection: the line gives exactly the body bytes the
  server handed to the kernel, which the client then reads to the end (a
  closed socket still sends what it holds), and a request time of at least
  the send timeout. Also for a value streamed piece by piece (compressed).
- A client that closes after 1,000 bytes: fewer bytes than the body.
- Pipelined requests are logged in their order.
- A graceful stop (QUIT) logs the response it let finish.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_access_log_bytes.py [--model threads --threads 4]
"""

import os
import re
import signal
import socket
import sys
import time

from kingx_harness import Conn, Server, cases_of, check, http, key_path, run_with_servers

MODEL_ARGS = sys.argv[1:]
SEND_TIMEOUT_MS = 1000
RAW = os.urandom(8 << 20)                                   # stored as it is: sent as a view of its segment
PACKED = b"".join(b"line %07d of a value that compresses\n" % i for i in range(200000))  # sent decoded piece by piece
LINE = re.compile(r'^\S+ - - \[[^\]]+\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+) "[^"]*" "([^"]*)" (\d+)\.(\d{3}) "[^"]*"$')
S = None


def server():
    global S
    if S is None or not S.alive():  # none yet, or a failed case's was stopped
        S = Server(MODEL_ARGS + ["--workers", "1", "--send-timeout-ms", str(SEND_TIMEOUT_MS)])
        S.start()
        check(http(S.port, "PUT", key_path("raw"), RAW).status == 201, "PUT raw")
        check(http(S.port, "PUT", key_path("packed"), PACKED).status == 201, "PUT packed")
        check(http(S.port, "PUT", key_path("small"), b"12345").status == 201, "PUT small")
    return S


def lines_of(agent, count=1, timeout=15.0):
    """[(method, target, status, body bytes, request time s)] of the access
    log lines whose user agent is `agent`, once there are `count` (lines
    are flushed within a second)."""
    deadline = time.monotonic() + timeout
    found = []
    while time.monotonic() < deadline:
        found = []
        try:
            with open(S.access_log, errors="replace") as f:
                for line in f:
                    m = LINE.match(line.rstrip("\n"))
                    if m and m.group(5) == agent:
                        found.append((m.group(1), m.group(2), int(m.group(3)), int(m.group(4)),
                                      int(m.group(6)) + int(m.group(7)) / 1000))
        except OSError:
            pass
        if len(found) >= count:
            return found
        time.sleep(0.1)
    check(False, f"{count} access log line(s) of {agent!r} expected, found {found}")


def slow_client(path, agent, read_first):
    """A GET whose client reads `read_first` bytes, then nothing until its
    line is logged (the send timeout closed the connection), then reads to
    the end. Returns (its line, the body bytes it received in all)."""
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.settimeout(15)
    c.connect(("127.0.0.1", S.port))
    c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\n\r\n".encode())
    got = b""
    while len(got) < read_first:
        data = c.recv(min(65536, read_first - len(got)))
        check(data, f"{agent}: the server closed after {len(got)} bytes")
        got += data
    line = lines_of(agent)[0]
    # To the end: the server's close, or the whole body (a server that did
    # not close has logged the line before it sent the body).
    while not whole_response(got):
        try:
            data = c.recv(1 << 16)
        except ConnectionResetError:
            check(False, f"{agent}: reset while reading what the server had sent")
        if not data:
            break
        got += data
    c.close()
    head, sep, body = got.partition(b"\r\n\r\n")
    check(sep, f"{agent}: no complete head in {len(got)} bytes")
    return line, len(body)


def whole_response(got):
    head, sep, body = got.partition(b"\r\n\r\n")
    m = re.search(rb"\r\nContent-Length: (\d+)", head, re.I)
    return sep and m and len(body) >= int(m.group(1))


def test_full_read_head_problem_and_listing():
    server()
    with Conn(S.port) as c:
        r = c.request("GET", key_path("raw"), headers=[("User-Agent", "full")])
        check(r.status == 200 and len(r.body) == len(RAW), f"GET raw: {r.status}, {len(r.body)} bytes")
        r = c.request("HEAD", key_path("raw"), headers=[("User-Agent", "head")])
        check(r.status == 200, f"HEAD raw: {r.status}")
        missing = c.request("GET", key_path("no-such-key"), headers=[("User-Agent", "missing")])
        check(missing.status == 404 and missing.body, f"GET missing: {missing.status}")
        refused = c.request("GET", "/v1/other", headers=[("User-Agent", "refused")])
        check(refused.status == 404 and refused.body, f"GET /v1/other: {refused.status}")
        deadline = time.monotonic() + 15
        while True:
            listing = c.request("GET", "/v1/kv/?limit=10", headers=[("User-Agent", "listing")])
            if listing.status != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        check(listing.status == 200 and b'"raw"' in listing.body, f"listing: {listing.status} {listing.body[:200]!r}")
    check(lines_of("full")[0][2:4] == (200, len(RAW)), f"full read: {lines_of('full')}")
    check(lines_of("head")[0][2:4] == (200, 0), f"HEAD: {lines_of('head')}")
    check(lines_of("missing")[0][2:4] == (404, len(missing.body)), f"404 problem: {lines_of('missing')}")
    check(lines_of("refused")[0][2:4] == (404, len(refused.body)), f"core's 404: {lines_of('refused')}")
    check(lines_of("listing")[-1][2:4] == (200, len(listing.body)), f"listing: {lines_of('listing')}")


def test_reader_of_nothing_logs_the_bytes_sent():
    server()
    line, received = slow_client(key_path("raw"), "silent", 0)
    check(line[2] == 200 and line[3] == received, f"silent reader: logged {line}, received {received} body bytes")
    check(0 < line[3] < len(RAW), f"silent reader: {line[3]} of {len(RAW)} body bytes logged")
    check(line[4] >= SEND_TIMEOUT_MS / 1000 - 0.05, f"silent reader: request time {line[4]} s under the send timeout")


def test_reader_of_n_bytes_logs_the_bytes_sent():
    server()
    line, received = slow_client(key_path("raw"), "partial", 300000)
    check(line[3] == received, f"partial reader: logged {line}, received {received} body bytes")
    check(300000 - 400 <= line[3] < len(RAW), f"partial reader: {line[3]} of {len(RAW)} body bytes logged")
    check(line[4] >= SEND_TIMEOUT_MS / 1000 - 0.05, f"partial reader: request time {line[4]} s")


def test_streamed_value_cut_short_logs_the_bytes_sent():
    server()
    line, received = slow_client(key_path("packed"), "streamed", 100000)
    check(line[2] == 200 and line[3] == received, f"streamed: logged {line}, received {received} body bytes")
    check(0 < line[3] < len(PACKED), f"streamed: {line[3]} of {len(PACKED)} body bytes logged")


def test_client_that_closes_early():
    server()
    c = socket.create_connection(("127.0.0.1", S.port))
    c.sendall(b"GET /v1/kv/raw HTTP/1.1\r\nHost: x\r\nUser-Agent: dropper\r\n\r\n")
    got = c.recv(1000)
    c.close()
    line = lines_of("dropper")[0]
    check(line[2] == 200 and len(got) - 400 < line[3] < len(RAW), f"dropper: {line}")


def test_pipelined_requests_keep_their_order():
    server()
    with Conn(S.port) as c:
        c.send(b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\nUser-Agent: pipe\r\n\r\n".encode()
                        for p in (key_path("small"), key_path("no-such"), key_path("raw"), key_path("small"))))
        sizes = [len(c.read_response().body) for _ in range(4)]
    got = [(l[1], l[3]) for l in lines_of("pipe", 4)]
    want = list(zip([key_path("small"), key_path("no-such"), key_path("raw"), key_path("small")], sizes))
    check(got == want, f"pipelined lines {got}, want {want}")


def test_graceful_stop_logs_the_response_it_finished():
    server()
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.settimeout(15)
    c.connect(("127.0.0.1", S.port))
    c.sendall(b"GET /v1/kv/raw HTTP/1.1\r\nHost: x\r\nUser-Agent: quit\r\n\r\n")
    got = c.recv(1000)
    S.signal(signal.SIGQUIT)
    while True:
        data = c.recv(1 << 16)
        if not data:
            break
        got += data
    c.close()
    S.wait_exit(20)
    body = len(got.partition(b"\r\n\r\n")[2])
    check(lines_of("quit", timeout=2)[0][2:4] == (200, body), f"graceful stop: {lines_of('quit')}, received {body}")


def main():
    run_with_servers("access log bytes", cases_of(globals()), lambda: S)


if __name__ == "__main__":
    main()
