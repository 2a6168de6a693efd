"""The event worker's sockets are registered edge-triggered, and no byte a
client sent (nor its end) waits in the worker for an event that will not
come.

Edge-triggered readiness (EPOLLET, as nginx registers its sockets) spares
epoll the second look at every socket it reported: level-triggered, each
socket an epoll_wait returned is polled again by the next one. The worker's
epoll registrations are read from /proc/PID/fdinfo of its epoll descriptor:
the server side of a keep-alive connection must carry EPOLLET and
EPOLLRDHUP with POLLIN.

An edge-triggered socket is reported once per arrival, so the worker must
not leave bytes unread that no later arrival will announce. Driven here:
  - the bound on reads per event (32 reads that each take what the short
    body budget allows): the client sends more than that while the worker
    is stopped (SIGSTOP), so that all of it waits in the socket's receive
    queue when the worker continues, and sends nothing after it; every
    request must be answered;
  - a read that does not fill its buffer with the client's end (FIN)
    behind its bytes: sent while the worker is stopped, a request (whole,
    or a PUT cut off inside its body) and the end; the worker must see the
    end and close the connection long before its timeouts would. A cut-off
    upload whose end went unseen kept its staging room, and the uploads
    waiting for that room went unanswered (test_aborted_uploads.py).
A worker that relied on a next event finds none and the client waits (the
case fails at its timeout).

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_readiness.py
"""

import os
import signal
import socket
import threading
import time

from kingx_harness import (Server, build_request, cases_of, check, key_path, proc_stat, run_with_servers,
                           server_rx_queue, wait_for)

S = None
EPOLLET = 0x80000000
EPOLLRDHUP = 0x2000
POLLIN = 0x1
HANG_S = 60.0
EOF_S = 20.0  # the worker sees a client's end at once; its timeouts are 300 s here
PAD = 7000  # bytes of each of a request's two padding headers (the header line limit is 8 KiB)


def start_server(args=()):
    global S
    if S is not None:
        S.cleanup()
    S = Server(["--workers", "1", *args])
    S.start()
    return S.wait_children("kingx-worker", 1)[0]


def epoll_registrations(pid):
    """{descriptor: event mask} of every epoll descriptor of process pid."""
    regs = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[eventpoll]":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("tfd:"):
                        p = line.split()
                        regs[int(p[1])] = int(p[3], 16)
        except OSError:
            continue
    return regs


def padded_get(i):
    """A GET of a missing key carrying ~14 KiB of headers (answered 404)."""
    return build_request("GET", key_path(f"absent{i:06d}"), headers=[("X-Pad-A", "a" * PAD), ("X-Pad-B", "b" * PAD)])


class Answers:
    """Reads and counts the HTTP/1.1 answers on sock in a thread."""

    def __init__(self, sock):
        self.sock, self.count, self.buf, self.error = sock, 0, b"", None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return
                self.buf += data
                # Each answer is a head and a body of Content-Length bytes.
                while True:
                    end = self.buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head = self.buf[:end].decode("latin-1")
                    length = 0
                    for line in head.split("\r\n")[1:]:
                        name, _, value = line.partition(":")
                        if name.strip().lower() == "content-length":
                            length = int(value)
                    if len(self.buf) < end + 4 + length:
                        break
                    check(head.startswith("HTTP/1.1 404"), f"answer {self.count}: {head.splitlines()[0]}")
                    self.buf = self.buf[end + 4 + length:]
                    self.count += 1
        except Exception as e:  # noqa: BLE001 (reported by wait)
            self.error = e

    def wait(self, n, what):
        deadline = time.monotonic() + HANG_S
        while self.count < n and self.error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.error is not None:
            raise self.error
        check(self.count == n, f"{what}: {self.count} of {n} requests answered in {HANG_S:.0f} s")


def test_a_reading_connection_is_registered_edge_triggered():
    worker = start_server()
    sock = socket.create_connection(("127.0.0.1", S.port), timeout=HANG_S)
    try:
        answers = Answers(sock)
        sock.sendall(padded_get(0))
        answers.wait(1, "one GET")
        side = S.server_side_of_client_port(sock.getsockname()[1])
        check(side is not None and side[0] == worker, f"the connection's server side: {side}, worker {worker}")
        regs = epoll_registrations(worker)
        check(side[1] in regs, f"descriptor {side[1]} is not in the worker's epoll registrations {regs}")
        mask = regs[side[1]]
        want = POLLIN | EPOLLET | EPOLLRDHUP
        check(mask & want == want,
              f"the connection (descriptor {side[1]}) is registered with events {mask:#x}: want POLLIN, "
              f"EPOLLET and EPOLLRDHUP ({want:#x})")
    finally:
        sock.close()
    check(S.alive(), "the server died")


def test_bytes_left_after_one_events_reads_are_read_without_another_arrival():
    # While the body budget is short, every read between requests is 4 KiB
    # (the I/O layer asks KvService::ReadBytesHint), so one event's 32 reads
    # take 128 KiB. The budget is made short as test_promises2 makes it
    # wait: a 1 MiB budget, one upload holding the whole reservation (its
    # body stalls halfway), a second holding its 64 KiB window and waiting.
    worker = start_server(["--body-buffer-bytes", "1048576", "--compression-level", "0", "--body-spill-bytes", "0"])
    # The reading connection first, its receive buffer grown by the kernel
    # (auto-tuning) as the worker reads a fast transfer, so that it can
    # hold more than one event's reads at once.
    sock = socket.create_connection(("127.0.0.1", S.port), timeout=HANG_S)
    answers = Answers(sock)
    port = sock.getsockname()[1]
    warm = 600
    sock.sendall(b"".join(padded_get(i) for i in range(warm)))
    answers.wait(warm, "the warm-up")
    window = 64 << 10
    uploads = []
    try:
        for name, length in (("holder", 300_000), ("waiter", 200_000)):
            up = socket.create_connection(("127.0.0.1", S.port), timeout=HANG_S)
            uploads.append(up)
            up.sendall(build_request("PUT", key_path(name), None, [("Content-Length", str(length))]))
            up.sendall(os.urandom(100_000))
            up_port = up.getsockname()[1]
            if name == "holder":
                wait_for(lambda: server_rx_queue(S.port, up_port) == 0, HANG_S, "the holder's bytes to be read")
            else:
                wait_for(lambda: 0 < (server_rx_queue(S.port, up_port) or 0) <= 100_000 - window, HANG_S,
                         "the waiter to read its window and wait")
        os.kill(worker, signal.SIGSTOP)
        try:
            wait_for(lambda: (proc_stat(worker) or ("", 0, 0, "?"))[3] == "T", 60, "the worker to stop")
            # More than one event's reads, all of it in the worker's receive
            # queue (none left in the client's send buffer, whose bytes would
            # arrive as the worker reads and so announce themselves).
            n = 12
            blob = b"".join(padded_get(i) for i in range(n))
            sock.sendall(blob)
            wait_for(lambda: server_rx_queue(S.port, port) == len(blob), 10,
                     f"the {len(blob)} bytes sent to reach the worker's receive queue")
            check(len(blob) > 32 * 4096, "the requests are longer than one event's reads")
        finally:
            os.kill(worker, signal.SIGCONT)
        answers.wait(warm + n, f"{n} requests ({len(blob)} bytes) queued while the worker was stopped")
    finally:
        sock.close()
        for up in uploads:
            up.close()
    check(S.alive(), "the server died")


def client_end_with_last_bytes(request, ends):
    """Sends `request` and the client's end (FIN) while the worker is
    stopped, so that the worker's first read after it continues takes every
    byte and leaves the FIN waiting behind them; the worker must then see
    the end and close the connection (after an answer, if `request` is
    whole) long before the timeouts that would close it otherwise (300 s).
    `ends`: what the client must receive before its EOF ("" = nothing
    checked)."""
    worker = start_server(["--body-timeout-ms", "300000", "--keepalive-timeout-ms", "300000"])
    sock = socket.create_connection(("127.0.0.1", S.port), timeout=HANG_S)
    try:
        port = sock.getsockname()[1]
        wait_for(lambda: S.server_side_of_client_port(port) is not None, 10, "the connection to be accepted")
        os.kill(worker, signal.SIGSTOP)
        try:
            wait_for(lambda: (proc_stat(worker) or ("", 0, 0, "?"))[3] == "T", 60, "the worker to stop")
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            # The FIN counts one in the receive queue's sequence space.
            wait_for(lambda: server_rx_queue(S.port, port) == len(request) + 1, 10,
                     f"the {len(request)} bytes sent and the end to reach the worker's receive queue")
        finally:
            os.kill(worker, signal.SIGCONT)
        got = b""
        sock.settimeout(EOF_S)
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                got += data
        except socket.timeout:
            check(False, f"the worker did not close the connection within {EOF_S:.0f} s of the client's end, "
                         f"which came with the last bytes it sent (got {got[:60]!r})")
        check(got.startswith(ends), f"the answer before the close: {got[:60]!r}, want {ends!r}")
    finally:
        sock.close()
    check(S.alive(), "the server died")


def test_a_client_end_that_came_with_a_cut_off_body_is_seen():
    # An upload cut off inside its body holds what it reserved (body
    # budget, staging room) until its end is seen: other uploads may wait
    # for that room.
    client_end_with_last_bytes(build_request("PUT", key_path("cut"), None, [("Content-Length", "100000")]) +
                               os.urandom(50_000), b"")


def test_a_client_end_that_came_with_a_whole_request_is_seen():
    client_end_with_last_bytes(build_request("GET", key_path("absent-end")), b"HTTP/1.1 404")


if __name__ == "__main__":
    run_with_servers("edge-triggered readiness in the event worker", cases_of(globals()), lambda: S)
