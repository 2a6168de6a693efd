"""The event worker wakes the writer once per poll phase under --sync always:
the writes it reads in one poll phase reach the sleeping writer as one
wake-up, so that the writer takes them as one batch (one fdatasync), not the
first of them alone with the rest waiting for its fdatasync.

One poll phase is made without timing: the worker is stopped (SIGSTOP), one
small PUT is sent on each of N idle keep-alive connections, and the worker
is continued: its next poll returns all N sockets readable. The writer's
wake-up counters in /metrics (kingx_write_queue_writer_wakes_total and
kingx_write_queue_wake_enqueues_total) must then have moved by one wake-up
carrying all N enqueues. A worker that wakes the writer at an enqueue shows
one wake-up per enqueue that found it asleep, each carrying one.

The writer sleeps between its idle turns; a turn that falls inside the
phase (it then finds the entries by itself) leaves no wake-up to count, and
the round is tried again, a few times at most.

The way back, writer to worker, is as cheap: each write's completion goes
into the worker's completion ring, and the writer writes the worker's
eventfd once per group commit that posted completions for it, never once
per write (README: the writer's loop). The same poll phase of N PUTs is made
while strace follows the writer's write calls on its eventfds: they must
number exactly the group commits the phase took (kingx_writer_batches_total),
and those must be fewer than the PUTs. A writer that woke the worker at each
completion shows N writes.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_writer_wake.py
"""

import os
import re
import signal

from kingx_harness import (Conn, Server, TestFailure, build_request, cases_of, check, http, key_path, proc_stat,
                           run_with_servers, traced_calls, wait_for)

S = None
N = 48          # PUTs read in one poll phase (fewer than the 128 a deferred wake-up carries at most)
ROUNDS = 5      # rounds tried before the test fails
HANG_S = 120.0


def metric_value(name):
    text = http(S.port, "GET", "/metrics", timeout=HANG_S).body.decode()
    m = re.search(r"^" + name + r" (\S+)$", text, re.M)
    check(m is not None, f"/metrics has no {name}")
    return int(float(m.group(1)))


def wake_counts():
    return metric_value("kingx_write_queue_writer_wakes_total"), metric_value("kingx_write_queue_wake_enqueues_total")


def start_server():
    """A fresh one-worker --sync always server and N keep-alive connections,
    each having created its key; returns (worker PID, connections)."""
    global S
    if S is not None:
        S.cleanup()
    S = Server(["--workers", "1", "--sync", "always"])
    S.start()
    worker = S.wait_children("kingx-worker", 1)[0]
    conns = [Conn(S.port, timeout=HANG_S) for _ in range(N)]
    for i, c in enumerate(conns):
        r = c.request("PUT", key_path(f"wake{i}"), b"first")
        check(r.status == 201, f"PUT on connection {i}: {r!r}")
    return worker, conns


def put_in_one_poll_phase(worker, conns, value):
    """One PUT of `value` on each connection, all read by one poll phase of
    the stopped-then-continued worker; checks that each is answered 204."""
    os.kill(worker, signal.SIGSTOP)
    try:
        wait_for(lambda: (proc_stat(worker) or ("", 0, 0, "?"))[3] == "T", 60, "the worker to stop")
        for i, c in enumerate(conns):
            c.send(build_request("PUT", key_path(f"wake{i}"), value.encode()))
            c.requests_sent += 1
    finally:
        os.kill(worker, signal.SIGCONT)
    for i, c in enumerate(conns):
        try:
            r = c.read_response()
        except TimeoutError:
            raise TestFailure(f"PUT on connection {i} got no answer in {HANG_S:.0f} s") from None
        check(r.status == 204, f"PUT {value} on connection {i}: {r!r}")


def test_the_writes_read_in_one_poll_phase_wake_the_writer_once():
    worker, conns = start_server()
    seen = []
    try:
        for rnd in range(ROUNDS):
            wakes0, enq0 = wake_counts()
            put_in_one_poll_phase(worker, conns, f"round{rnd}")
            wakes1, enq1 = wake_counts()
            seen.append((wakes1 - wakes0, enq1 - enq0))
            if seen[-1] == (1, N):
                break
        else:
            raise TestFailure(f"{N} PUTs read in one poll phase never woke the writer once carrying all of them: "
                              f"(wake-ups, enqueues they carried) per round {seen}")
    finally:
        for c in conns:
            c.close()
    for i in range(N):
        r = http(S.port, "GET", key_path(f"wake{i}"), timeout=HANG_S)
        check(r.status == 200 and r.body == f"round{len(seen) - 1}".encode(), f"GET wake{i}: {r!r}")
    check(S.alive(), "the server died")


def test_a_group_commit_wakes_the_worker_once_not_once_per_write():
    worker, conns = start_server()
    writer = S.wait_children("kingx-writer", 1)[0]
    eventfds = [int(fd) for fd in os.listdir(f"/proc/{writer}/fd")
                if os.readlink(f"/proc/{writer}/fd/{fd}") == "anon_inode:[eventfd]"]
    check(eventfds, f"the writer {writer} holds no eventfd")
    seen = []
    try:
        for rnd in range(ROUNDS):
            batches0 = metric_value("kingx_writer_batches_total")
            writes = traced_calls(writer, ["write"], lambda: put_in_one_poll_phase(worker, conns, f"back{rnd}"),
                                  fd=eventfds)["write"]
            batches = metric_value("kingx_writer_batches_total") - batches0
            seen.append((writes, batches))
            check(writes == batches, f"{N} PUTs in {batches} group commits: the writer wrote the worker's eventfd "
                                     f"{writes} times, want once per group commit ({batches})")
            if batches < N // 2:
                break
        else:
            raise TestFailure(f"{N} PUTs read in one poll phase never went to the writer in fewer than {N // 2} "
                              f"group commits: (eventfd writes, group commits) per round {seen}")
    finally:
        for c in conns:
            c.close()
    check(S.alive(), "the server died")


if __name__ == "__main__":
    run_with_servers("the writer's and the worker's wake-ups of each other", cases_of(globals()), lambda: S)
