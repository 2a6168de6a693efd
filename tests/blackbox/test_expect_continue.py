"""Expect: 100-continue (RFC 9110 section 10.1.1) on the real binary, over raw
sockets: "100 Continue" invites the body, so it goes out only once the
server wants that body.

  - a large upload held by the staging share (its body unread) gets nothing
    while held, then 100 once admitted, then its final status;
  - one held past --storage-timeout-ms gets 503 + Retry-After and never a 100;
  - a request refused from its head alone (413 over --max-value-bytes, 405 on
    a --read-only server) gets its final status without a 100, and the
    connection closes (the client never sent the body it announced).

No timing thresholds: "nothing while held" is read after /metrics shows the
upload held, when the old behaviour had already written its 100.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_expect_continue.py [--model threads]
"""

import os
import select
import socket
import sys

from kingx_harness import (Server, ServerPerCase, adopt, build_request, cases_of, check, http, key_path, metric,
                           run_with_servers, staging_files, wait_for)

SERVERS = ServerPerCase()
MIB = 1 << 20


def expect_put(port, key, length):
    """A socket that sent the head of a PUT with Expect: 100-continue."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(build_request("PUT", key_path(key), None,
                               [("Content-Length", str(length)), ("Expect", "100-continue")]))
    return sock


def pending_bytes(sock, wait_s):
    """What the server sent on `sock` so far (waiting at most wait_s for a
    first byte): b"" when nothing."""
    readable, _, _ = select.select([sock], [], [], wait_s)
    if not readable:
        return b""
    return sock.recv(1 << 16, socket.MSG_PEEK)


def stage_holder(s):
    """An upload of 3 MiB that has staged 2 MiB and stays in progress: on an
    empty database it takes the whole share (one upload at a time)."""
    value = os.urandom(3 * MIB)
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    sock.sendall(build_request("PUT", key_path("holder"), None, [("Content-Length", str(len(value)))]))
    sock.sendall(value[:2 * MIB])
    wait_for(lambda: sum(staging_files(s.data_dir).values()) >= MIB, 60, "the first upload to stage")
    return sock, value


def test_held_upload_gets_100_only_once_admitted():
    s = SERVERS.start("--workers", "1", "--compression-level", "0")
    holder, holder_value = stage_holder(s)
    value = os.urandom(2 * MIB)
    waiter = expect_put(s.port, "waiter", len(value))
    try:
        wait_for(lambda: metric(s.port, "kingx_staging_held_uploads") == 1, 60, "the second upload held")
        early = pending_bytes(waiter, 0.5)
        check(early == b"", f"a held upload was sent {early[:80]!r} before it was admitted")
        holder.sendall(holder_value[2 * MIB:])
        r = adopt(holder, s.port, 60).read_response()
        check(r.status == 201, f"the first upload: {r.status}")
        conn = adopt(waiter, s.port, 60)
        r = conn.read_response()
        check(r.status == 100, f"the admitted upload's first answer: {r.status} {r.body[:200]!r}")
        waiter.sendall(value)
        r = conn.read_response()
        check(r.status == 201, f"the admitted upload: {r.status} {r.body[:200]!r}")
    finally:
        holder.close()
        waiter.close()
    check(http(s.port, "GET", key_path("waiter"), timeout=60).body == value, "the admitted upload's value")


def test_held_upload_past_the_deadline_gets_503_without_100():
    s = SERVERS.start("--workers", "1", "--storage-timeout-ms", "1000", "--compression-level", "0")
    holder, _ = stage_holder(s)
    waiter = expect_put(s.port, "waiter", 2 * MIB)
    try:
        r = adopt(waiter, s.port, 60).read_response()
        check(r.status == 503, f"held upload's first answer: {r.status} {r.body[:200]!r}")
        check(r.header("Retry-After") is not None, "503 without Retry-After")
        check((r.header("Connection") or "").lower() == "close", "503 to an unsent body without Connection: close")
    finally:
        holder.close()
        waiter.close()
    check(http(s.port, "GET", key_path("waiter")).status == 404, "the held upload was stored")


def refused_without_100(port, key, length, status):
    sock = expect_put(port, key, length)
    try:
        conn = adopt(sock, port, 30)
        r = conn.read_response()
        check(r.status == status, f"expected {status} first, got {r.status} {r.body[:200]!r}")
        check(conn.wait_closed(10) == "closed", "the connection stayed open for a body the client never sent")
    finally:
        sock.close()


def test_refused_from_the_head_gets_its_status_without_100():
    s = SERVERS.start("--workers", "1", "--max-value-bytes", "4096")
    refused_without_100(s.port, "big", 4097, 413)
    s.stop()
    # The same directory served read-only (the first server's cleanup removes it).
    ro_dir = os.path.join(s.workdir, "read-only")
    os.makedirs(ro_dir)
    ro = Server(SERVERS.base_args + ["--workers", "1", "--read-only"], data_dir=s.data_dir, workdir=ro_dir)
    try:
        ro.start()
        refused_without_100(ro.port, "k", 10, 405)
    finally:
        ro.cleanup()


if __name__ == "__main__":
    if "--model" in sys.argv:
        SERVERS.base_args = ["--model", sys.argv[sys.argv.index("--model") + 1], "--threads", "16"]
    run_with_servers("expect 100-continue " + " ".join(SERVERS.base_args), cases_of(globals()), SERVERS.current)
