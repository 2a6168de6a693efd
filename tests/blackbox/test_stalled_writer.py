"""Writes never hang: with the writer stopped (SIGSTOP: alive, holding its
place, making no progress), a PUT that was queued is answered 503 "outcome
unknown" with Retry-After once it has waited --storage-timeout-ms, /readyz
turns 503 and says why, and GETs keep answering. Once the server knows the
writer makes no progress (/readyz 503), a new PUT or DELETE is refused at
once, before it is queued: 503 + Retry-After saying it was not applied. Once
the writer runs again, /readyz is 200 again, the connection that got the 503
carries new writes, the write that was answered "outcome unknown" is found
applied (it was queued: the writer may still apply it, which is why the
answer cannot say it failed) and the refused ones are not.

No timing threshold: a client that gets no answer within 120 s (many times
the 1 s storage timeout) is a hang, and each state is polled for with a
bound far above what a loaded machine needs. The refusal is told from the
timeout's answer by what it says, not by how soon it comes.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_stalled_writer.py [--model threads]
"""

import fcntl
import os
import signal
import socket
import struct
import sys
import termios
import threading
import time

from kingx_harness import (Conn, Server, TestFailure, build_request, check, check_quiet_between_ticks, http, key_path,
                           metric, require_bin, run_with_servers, server_rx_queue, wait_for, cases_of)

S = None
MODEL_ARGS = sys.argv[1:]
TIMEOUT_MS = 1000
HANG_S = 120.0


def start():
    global S
    if S is not None:
        S.cleanup()
    S = Server(["--workers", "1", "--storage-timeout-ms", str(TIMEOUT_MS)] + MODEL_ARGS)
    S.start()
    return S


def readyz():
    r = http(S.port, "GET", "/readyz", timeout=HANG_S)
    return r


def test_a_stopped_writer_answers_writes_503_outcome_unknown_and_turns_readyz_503():
    start()
    check(http(S.port, "PUT", key_path("before"), b"kept").status == 201, "PUT before the stall")
    check(readyz().status == 200, "/readyz before the stall")
    writer = S.wait_children("kingx-writer", 1)[0]
    refused_late = []  # PUTs whose body ended after the stall was known: refused, not applied
    for attempt in range(5):
        # The PUT's head and part of its body are read while the writer runs, the rest
        # right after the writer stopped: queued before the server knows of the stall
        # (within the storage timeout), it waits for "outcome unknown". A loaded machine
        # may read the rest only once the stall is known: then the write is refused,
        # "not applied" (checked below), and the round is tried again.
        stalled_key = f"stalled{attempt}"
        c = Conn(S.port, timeout=HANG_S)
        whole = build_request("PUT", key_path(stalled_key), b"maybe")
        c.send(whole[:-3])
        wait_for(lambda: server_rx_queue(S.port, c.local_port()) == 0, 60, "the server to read the PUT's head")
        # Another PUT's head is taken while the writer runs too; its body ends only once
        # the server knows of the stall (below).
        late = Conn(S.port, timeout=HANG_S)
        late_whole = build_request("PUT", key_path("late"), b"never applied")
        late.send(late_whole[:-3])
        wait_for(lambda: server_rx_queue(S.port, late.local_port()) == 0, 60, "the server to read a PUT's head")
        os.kill(writer, signal.SIGSTOP)
        c.send(whole[-3:])
        try:
            r = c.read_response()
        except TimeoutError:
            os.kill(writer, signal.SIGCONT)
            raise TestFailure(f"PUT got no answer in {HANG_S:.0f} s with the writer stopped") from None
        body = r.body.decode("utf-8", "replace")
        if r.status == 503 and "not applied" in body and "may or may not" not in body:
            refused_late.append(stalled_key)
            c.close()
            late.close()
            os.kill(writer, signal.SIGCONT)
            wait_for(lambda: readyz().status == 200, 60, "/readyz 200 once the writer runs again")
            continue
        break
    else:
        raise TestFailure(f"every PUT of 5 was read only after the stall was known: {refused_late}")
    with c:
        try:
            check(r.status == 503, f"PUT with the writer stopped: {r!r}")
            check(r.header("Retry-After") is not None, f"no Retry-After: {r!r}")
            check("may or may not" in body and "--storage-timeout-ms" in body,
                  f"the 503 does not say the outcome is unknown and which setting: {body}")

            def stalled_readyz():
                r = readyz()
                return r.status == 503 and "no progress" in r.body.decode("utf-8", "replace")
            wait_for(stalled_readyz, 60, "/readyz 503 naming the stalled writer")
            # A write whose head came before the stall was known and whose body ends after
            # it: refused where it would be queued, not applied (and never applied later).
            with late:
                late.send(late_whole[-3:])
                try:
                    r = late.read_response()
                except TimeoutError:
                    raise TestFailure(f"a late body's PUT got no answer in {HANG_S:.0f} s") from None
                body = r.body.decode("utf-8", "replace")
                check(r.status == 503 and r.header("Retry-After") is not None and "not applied" in body
                      and "may or may not" not in body,
                      f"a PUT whose body ended after the stall was known was not refused as not applied: {r!r}")
            # Now the server knows: new writes are refused before they are queued.
            with Conn(S.port, timeout=HANG_S) as c2:
                for method, key, value in (("PUT", "refused", b"never"), ("DELETE", "before", None)):
                    try:
                        r = c2.request(method, key_path(key), value)
                    except TimeoutError:
                        raise TestFailure(f"{method} got no answer in {HANG_S:.0f} s with the writer stopped") \
                            from None
                    body = r.body.decode("utf-8", "replace")
                    check(r.status == 503 and r.header("Retry-After") is not None,
                          f"{method} once /readyz said the writer makes no progress: {r!r}")
                    check(r.header("Content-Type") == "application/problem+json", f"not a problem body: {r!r}")
                    check("not applied" in body and "no progress" in body and "--storage-timeout-ms" in body
                          and "may or may not" not in body,
                          f"the {method} was not refused before it was queued (its 503 does not say it was not "
                          f"applied, the writer's state and the setting): {body}")
                    check(r.json().get("parameter") == "--storage-timeout-ms", f"no parameter: {body}")
                # The refusal leaves the connection usable.
                r = c2.request("GET", key_path("before"))
                check(r.status == 200 and r.body == b"kept", f"GET after the refusals, same connection: {r!r}")
            r = http(S.port, "GET", key_path("before"), timeout=HANG_S)
            check(r.status == 200 and r.body == b"kept", f"GET with the writer stopped: {r!r}")
            metrics = http(S.port, "GET", "/metrics", timeout=HANG_S).body.decode()
            age = [ln for ln in metrics.splitlines() if ln.startswith("kingx_writer_heartbeat_age_seconds ")]
            check(age and float(age[0].split()[1]) > TIMEOUT_MS / 1000,
                  f"heartbeat age gauge while stalled: {age}")
            os.kill(writer, signal.SIGCONT)
            wait_for(lambda: readyz().status == 200, 60, "/readyz 200 once the writer runs again")
            # The same connection carries a new write once the writer runs.
            r = c.request("PUT", key_path("after"), b"fine")
            check(r.status == 201, f"PUT on the same connection after the stall: {r!r}")
        finally:
            os.kill(writer, signal.SIGCONT)
    r = http(S.port, "GET", key_path(stalled_key), timeout=HANG_S)
    check(r.status == 200 and r.body == b"maybe",
          f"the write answered 'outcome unknown' was queued and should be applied once the writer ran: {r!r}")
    for late_key in refused_late + ["late"]:
        r = http(S.port, "GET", key_path(late_key), timeout=HANG_S)
        check(r.status == 404, f"the PUT refused as not applied after its body ended was applied: {r!r}")
    r = http(S.port, "GET", key_path("refused"), timeout=HANG_S)
    check(r.status == 404, f"the PUT refused as not applied was applied: {r!r}")
    r = http(S.port, "GET", key_path("before"), timeout=HANG_S)
    check(r.status == 200 and r.body == b"kept", f"the DELETE refused as not applied was applied: {r!r}")
    check(S.alive(), "the server died")


def test_a_large_upload_answered_outcome_unknown_gives_its_staging_room_back_once_the_writer_runs():
    """A large upload queued while the writer is stopped holds its staging room until its
    completion comes; the connection that got its 503 is gone, and its worker (in the thread
    model: the pool thread, idle afterwards) must still take that completion once the writer
    runs again, so that the next large upload is admitted, not held for the room and refused.
    Meanwhile (thread model) the idle pool thread sleeps until that completion rings it: no
    thread of the worker wakes between two ticks of its main thread (none looks at its mail on
    a timer)."""
    start()
    big = (1 << 20) + 1  # past one write-queue part: staged by the writer
    check(http(S.port, "PUT", key_path("before"), b"kept").status == 201, "PUT before the stall")
    writer = S.wait_children("kingx-writer", 1)[0]
    os.kill(writer, signal.SIGSTOP)
    try:
        r = http(S.port, "PUT", key_path("stalled-big"), os.urandom(big), timeout=HANG_S)
        check(r.status == 503 and b"may or may not be applied" in r.body, f"the stalled large PUT: {r!r}")
        check((metric(S.port, "kingx_staging_reserved_bytes") or 0) > 0, "the stalled upload holds no staging room")
        if "threads" in MODEL_ARGS:
            check_quiet_between_ticks(S.workers()[0], 0, "a write answered 'outcome unknown' was in flight with "
                                                         "every pool thread idle")
    finally:
        os.kill(writer, signal.SIGCONT)
    wait_for(lambda: readyz().status == 200, HANG_S, "/readyz 200 after SIGCONT")
    time.sleep(0.5)  # the completion's way back: milliseconds
    held = metric(S.port, "kingx_staging_reserved_bytes")
    r = http(S.port, "PUT", key_path("after-big"), os.urandom(big), timeout=HANG_S)
    check(held == 0 and r.status == 201,
          f"0.5 s after the writer ran again, {held:.0f} staging bytes still reserved; the next large PUT: {r!r}")


def test_a_client_pipelining_behind_a_waiting_write_is_held_back_by_flow_control():
    # While a write waits for the storage the server takes at most one more
    # small read (4 KiB) from its connection, then leaves the bytes to TCP
    # (the Connection's own input bound, 64 KiB, is not what stops it): what
    # it took stays bounded however much the client pipelines, and every
    # pipelined request is answered in order once the writer runs again.
    global S
    if S is not None:
        S.cleanup()
    S = Server(["--workers", "1", "--storage-timeout-ms", str(int(HANG_S * 1000 * 10))] + MODEL_ARGS)
    S.start()
    writer = S.wait_children("kingx-writer", 1)[0]
    body = b"p" * 4096
    first = build_request("PUT", key_path("first"), b"waits")
    bound = len(first) + 4096  # the first PUT, and one small read while it waits
    os.kill(writer, signal.SIGSTOP)
    try:
        with Conn(S.port, timeout=HANG_S) as c:
            # Pipeline more than the kernel can hold between the two ends (the client's send
            # buffer, fixed here so that it does not grow, and the server's receive buffer,
            # which starts at tcp_rmem's default and grows only as the server reads), so that
            # the socket refuses bytes once the server stops reading.
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 << 10)
            sndbuf = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            with open("/proc/sys/net/ipv4/tcp_rmem") as f:
                rcvbuf = int(f.read().split()[1])
            one = len(build_request("PUT", key_path("piped0"), body))
            count = max(1024, (2 * (sndbuf + rcvbuf) + (1 << 20)) // one + 1)
            piped = b"".join(build_request("PUT", key_path(f"piped{i}"), body) for i in range(count))
            c.send(first)
            # Pipeline only once the server took the first PUT: the read that took it took
            # nothing else.
            wait_for(lambda: server_rx_queue(S.port, c.local_port()) == 0, 60, "the server to read the PUT")
            c.sock.setblocking(False)
            sent = 0
            stuck_since = None
            deadline = time.monotonic() + 60
            # Push until the socket takes nothing for 2 s: the server stopped reading, the
            # kernel's buffers are full. A server that kept reading would take it all.
            while sent < len(piped) and time.monotonic() < deadline:
                try:
                    n = c.sock.send(piped[sent:sent + (1 << 16)])
                    sent += n
                    stuck_since = None
                except BlockingIOError:
                    stuck_since = stuck_since or time.monotonic()
                    if time.monotonic() - stuck_since > 2:
                        break
                    time.sleep(0.01)
            unsent = struct.unpack("i", fcntl.ioctl(c.sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
            queued = server_rx_queue(S.port, c.local_port())
            check(queued is not None, f"no server socket for client port {c.local_port()} in /proc/net/tcp")
            taken = len(first) + sent - unsent - queued
            check(taken <= bound, f"the server read {taken} bytes while the write waited (at most {bound})")
            check(sent < len(piped), f"the socket took all {len(piped)} pipelined bytes while the write waited "
                                     f"(client send buffer {sndbuf}, server receive buffer from {rcvbuf})")
            c.sock.setblocking(True)
            c.sock.settimeout(HANG_S)
            os.kill(writer, signal.SIGCONT)
            r = c.read_response()
            check(r.status == 201, f"the waiting PUT once the writer ran: {r!r}")
            # The rest from another thread: the server's answers must be read meanwhile.
            rest = threading.Thread(target=c.sock.sendall, args=(piped[sent:],), daemon=True)
            rest.start()
            for i in range(count):
                r = c.read_response()
                check(r.status == 201, f"pipelined PUT {i}: {r!r}")
            rest.join()
    finally:
        os.kill(writer, signal.SIGCONT)
    r = http(S.port, "GET", key_path(f"piped{count - 1}"), timeout=HANG_S)
    check(r.status == 200 and r.body == body, f"the last pipelined PUT: {r!r}")
    check(S.alive(), "the server died")


if __name__ == "__main__":
    require_bin()
    run_with_servers("writes never hang" + (" " + " ".join(MODEL_ARGS) if MODEL_ARGS else ""),
                     cases_of(globals()), lambda: S)
