"""Promises of README.md that no other test held the real binary to (the
fifth part; test_promises.py to test_promises4.py have the others), each
checked where a client sees it, with no timing threshold:

  - during a garbage flood, with no busy keep-alive client nothing is
    metered: clients that each sent one request on a connection they keep,
    and clients (or a proxy) opening one connection per request, meet the
    flood in the backlog as before. Metering would accept at most one client
    per 10 ms beyond a burst of 8 (and one per 64 requests answered), so N
    clients all answered in less time than that pace needs were not metered.
    The flood is made by the test itself, 64 connections refused 400 one
    after another, and is on for 1 s after the latest of them (the flood's
    definition): an attempt counts only when the clients were answered and a
    probe confirmed the flood (its junk refused and the connection parked,
    `kingx_http_flood_parked_total`, then closed with a FIN once 64 more
    were parked: the park bound with --max-connections 512, the junk it
    left unread dropped before the close) within 0.9 s of that refusal by
    the client's clock, and only when
    the clients were answered faster than the metered pace allows; a slower
    attempt (a loaded machine) is repeated, at most 20 times.

Every server a case starts is stopped by PID when the case ends, and
SIGTERM (meson's timeout) exits through that cleanup.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_promises5.py
"""

import re
import selectors
import signal
import socket
import sys
import time

from kingx_harness import ServerPerCase, cases_of, check, metric, run_with_servers, wait_for
from test_promises4 import (FIRST_READ_BYTES, FLOOD_QUIET_S, FLOOD_WINDOW, MAX_CONNECTIONS, PARK_MAX, check_refused_400,
                            junk_answer, read_to_end, still_open)

SERVERS = ServerPerCase()

# src/worker/flood_guard.h: the metered pace
ACCEPT_EVERY_S = 0.010   # kAcceptEveryMs
BURST = 8                # kBurst
REQUESTS_PER_ACCEPT = 64  # kRequestsPerAccept

ATTEMPTS = 20


def metered_needs_s(n):
    """The least time a metered worker needs to accept n clients that each
    bring one request: at most BURST tokens saved, one more per
    ACCEPT_EVERY_S and per REQUESTS_PER_ACCEPT requests answered (one more
    for the rounding of each)."""
    free = BURST + n // REQUESTS_PER_ACCEPT + 2
    return max(0, n - free) * ACCEPT_EVERY_S


def refuse(port, n):
    """n connections of junk, one after another, each refused 400 before any
    request (and closed by the client after its answer: once the flood is
    on the server parks them). Returns the client's clock at the start of the
    last one."""
    t_last = None
    for _ in range(n):
        t_last = time.monotonic()
        sock, head = junk_answer(port, 12)
        sock.close()
        check_refused_400(head, "a flood connection")
    return t_last


def complete(data):
    """True once data holds a whole response with a Content-Length."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"^content-length: *(\d+)\r?$", head, re.I | re.M)
    check(m is not None, f"a response without Content-Length: {head!r}")
    return len(body) >= int(m.group(1))


def answer_all(port, n, close):
    """Opens n connections at once, each sends one GET /healthz (with
    `Connection: close` when close) and reads its response (to the server's
    close when close; the connection is kept otherwise). Returns the open
    sockets once every response arrived (the caller closes them; those
    closed by the server are closed already)."""
    head = b"GET /healthz HTTP/1.1\r\nHost: kingx\r\n" + (b"Connection: close\r\n" if close else b"") + b"\r\n"
    socks = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=60))
        for s in socks:
            s.sendall(head)
            s.setblocking(False)
        sel = selectors.DefaultSelector()
        got = {}
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
            got[s] = b""
        pending = set(socks)
        deadline = time.monotonic() + 120
        while pending:
            check(time.monotonic() < deadline, f"{len(pending)} of {n} clients still without an answer after 120 s")
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                data = s.recv(65536)
                got[s] += data
                done = not data if close else complete(got[s])
                if done:
                    check(got[s].startswith(b"HTTP/1.1 200 "), f"GET /healthz: {got[s][:200]!r}")
                    sel.unregister(s)
                    pending.discard(s)
                    if close:
                        s.close()  # as a client does at the server's close (a pool thread lingers until then)
        sel.close()
        return socks
    except BaseException:
        for s in socks:
            s.close()
        raise


def unmetered_during_a_flood(model_args, n, close, who):
    s = SERVERS.start("--workers", "1", "--max-connections", str(MAX_CONNECTIONS), *model_args)
    needs = metered_needs_s(n)
    slow = []
    for _ in range(ATTEMPTS):
        # A flood: every connection of the last 64 that ended was refused.
        t_last = refuse(s.port, FLOOD_WINDOW)
        t0 = time.monotonic()
        socks = answer_all(s.port, n, close)
        took = time.monotonic() - t0
        try:
            # The flood is still on: the probe's junk is refused and its
            # connection parked (otherwise it is lingered on, then closed).
            parked0 = metric(s.port, "kingx_http_flood_parked_total")
            check(parked0 is not None, "no kingx_http_flood_parked_total in /metrics")
            probe, head = junk_answer(s.port, FIRST_READ_BYTES + 1)
            t_end = time.monotonic()
            held = []
            try:
                end = wait_for(lambda: "parked" if metric(s.port, "kingx_http_flood_parked_total") > parked0 else
                               "closed" if not still_open(probe) else None, 60, "the probe parked or closed")
                if end == "parked":
                    # Closed for PARK_MAX more parked ones, with a FIN (the
                    # junk it left unread is dropped first).
                    for _ in range(PARK_MAX):
                        sock, _ = junk_answer(s.port, 12)
                        held.append(sock)
                    end = "parked, then " + read_to_end(probe)[1]
            finally:
                probe.close()
                for sock in held:
                    sock.close()
        finally:
            for sock in socks:
                sock.close()
        if took >= needs or t_end - t_last >= FLOOD_QUIET_S * 0.9:
            slow.append(f"{took:.2f}/{t_end - t_last:.2f}")
            # Let the clients' connections end before the next attempt's flood.
            wait_for(lambda: metric(s.port, "kingx_http_open_connections") <= 1, 60, "the clients' connections to end")
            continue
        check_refused_400(head, "the probe after the clients")
        check(end == "parked, then fin", f"the probe after {n} {who}: its connection was {end}, want it parked, "
              f"then closed with a FIN (the flood was on; connections that ended normally "
              f"since: {(n if close else 0) + 1} of the last 64)")
        return
    check(False, f"{ATTEMPTS} attempts, none conclusive: {n} {who} took {needs:.2f} s or more (metered, they need "
          f"at least that), or the probe came 0.9 s or more after the flood's latest refusal (seconds to the "
          f"last answer / to the probe: {', '.join(slow)})")


def test_with_no_busy_keep_alive_client_a_flood_meters_nothing():
    # 300 clients each send one request and keep their connection: none is
    # a busy keep-alive client (that needs a second request), and none
    # ends, so the flood stays on around them. Metered, they would need
    # 2.88 s; the flood is over 1 s after its latest refusal.
    unmetered_during_a_flood([], 300, False, "clients with one request each on a connection they keep")


def test_clients_opening_one_connection_per_request_meet_the_flood_unmetered():
    # 31 clients each open a connection, send one request with
    # `Connection: close` and read to the server's close. Their connections
    # end normally: 31 of the last 64 endings, so the flood stays on (33
    # refused), as the probe after them shows. Metered, they would need
    # 0.21 s.
    unmetered_during_a_flood([], FLOOD_WINDOW // 2 - 1, True, "clients opening one connection per request")


def test_the_same_in_the_thread_model():
    # The thread model's acceptor, for clients opening one connection per
    # request (a pool thread serves a kept connection until it ends, so the
    # first case has no meaning there).
    unmetered_during_a_flood(["--model", "threads", "--threads", "8"], FLOOD_WINDOW // 2 - 1, True,
                             "clients opening one connection per request")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    run_with_servers("promises (part 5)", cases_of(globals()), SERVERS.current)
