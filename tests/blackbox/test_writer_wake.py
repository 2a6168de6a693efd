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

The way back: the writer writes a worker's eventfd for the completions it
posts only while that worker may block (kingx_completion_wakes_total, and
kingx_completion_wakes_skipped_total when the worker was running and took
them before it blocked). A worker blocked in its poll while the writer is
held (SIGSTOP) with its write is woken by the eventfd once the writer goes
on; under a load that keeps the worker running, some posts skip the
eventfd, and every write is still answered.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_writer_wake.py
"""

import os
import re
import signal
import threading

from kingx_harness import (Conn, Server, TestFailure, build_request, cases_of, check, http, key_path, metric,
                           proc_stat, run_with_servers, wait_for)

S = None
N = 48          # PUTs read in one poll phase (fewer than the 128 a deferred wake-up carries at most)
ROUNDS = 5      # rounds tried before the test fails
HANG_S = 120.0


def wake_counts():
    text = http(S.port, "GET", "/metrics", timeout=HANG_S).body.decode()
    out = {}
    for name in ("kingx_write_queue_writer_wakes_total", "kingx_write_queue_wake_enqueues_total"):
        m = re.search(r"^" + name + r" (\S+)$", text, re.M)
        check(m is not None, f"/metrics has no {name}")
        out[name] = int(float(m.group(1)))
    return out["kingx_write_queue_writer_wakes_total"], out["kingx_write_queue_wake_enqueues_total"]


def test_the_writes_read_in_one_poll_phase_wake_the_writer_once():
    global S
    S = Server(["--workers", "1", "--sync", "always"])
    S.start()
    worker = S.wait_children("kingx-worker", 1)[0]
    conns = [Conn(S.port, timeout=HANG_S) for _ in range(N)]
    seen = []
    try:
        for i, c in enumerate(conns):
            r = c.request("PUT", key_path(f"wake{i}"), b"first")
            check(r.status == 201, f"PUT on connection {i}: {r!r}")
        for rnd in range(ROUNDS):
            wakes0, enq0 = wake_counts()
            os.kill(worker, signal.SIGSTOP)
            try:
                wait_for(lambda: (proc_stat(worker) or ("", 0, 0, "?"))[3] == "T", 60, "the worker to stop")
                for i, c in enumerate(conns):
                    c.send(build_request("PUT", key_path(f"wake{i}"), f"round{rnd}".encode()))
                    c.requests_sent += 1
            finally:
                os.kill(worker, signal.SIGCONT)
            for i, c in enumerate(conns):
                try:
                    r = c.read_response()
                except TimeoutError:
                    raise TestFailure(f"PUT on connection {i} got no answer in {HANG_S:.0f} s") from None
                check(r.status == 204, f"PUT on connection {i}, round {rnd}: {r!r}")
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


def completion_wakes():
    text = http(S.port, "GET", "/metrics", timeout=HANG_S).body.decode()
    out = []
    for name in ("kingx_completion_wakes_total", "kingx_completion_wakes_skipped_total"):
        m = re.search(r"^" + name + r" (\S+)$", text, re.M)
        check(m is not None, f"/metrics has no {name}")
        out.append(int(float(m.group(1))))
    return tuple(out)


def test_a_worker_blocked_when_the_writer_posts_is_woken():
    global S
    S = Server(["--workers", "1", "--sync", "always"])
    S.start()
    worker = S.wait_children("kingx-worker", 1)[0]
    writer = S.wait_children("kingx-writer", 1)[0]
    seen = []
    with Conn(S.port, timeout=HANG_S) as c:
        check(c.request("PUT", key_path("blocked"), b"first").status == 201, "first PUT")
        for rnd in range(ROUNDS):
            wakes0 = completion_wakes()
            os.kill(writer, signal.SIGSTOP)
            try:
                wait_for(lambda: (proc_stat(writer) or ("", 0, 0, "?"))[3] == "T", 60, "the writer to stop")
                c.send(build_request("PUT", key_path("blocked"), f"round{rnd}".encode()))
                c.requests_sent += 1
                # Queued, and the worker asleep in its poll (its flag says it may block).
                wait_for(lambda: metric(S.port, "kingx_write_queue_entries") == 1, 60, "the PUT to be queued")
                wait_for(lambda: (proc_stat(worker) or ("", 0, 0, "?"))[3] == "S", 60, "the worker to sleep")
            finally:
                os.kill(writer, signal.SIGCONT)
            try:
                r = c.read_response()
            except TimeoutError:
                raise TestFailure(f"the PUT got no answer in {HANG_S:.0f} s") from None
            check(r.status == 204, f"PUT, round {rnd}: {r!r}")
            wakes1 = completion_wakes()
            seen.append((wakes1[0] - wakes0[0], wakes1[1] - wakes0[1]))
            if seen[-1] == (1, 0):
                break
        else:
            # A round may find the worker running a timer when the writer posts; never all of them.
            raise TestFailure(f"the writer never woke the sleeping worker for its completion: "
                              f"(wake-ups, skipped) per round {seen}")
    check(http(S.port, "GET", key_path("blocked"), timeout=HANG_S).body == f"round{len(seen) - 1}".encode(),
          "the last round's value")
    check(S.alive(), "the server died")


CLIENTS = 16     # connections of the load that keeps the worker running
PUTS = 150       # sequential PUTs per connection


def test_a_running_worker_takes_its_completions_without_a_wake_up():
    global S
    S = Server(["--workers", "1", "--sync", "none"])
    S.start()
    seen = []
    for rnd in range(3):
        wakes0 = completion_wakes()
        failures = []

        def client(n):
            try:
                with Conn(S.port, timeout=HANG_S) as c:
                    for i in range(PUTS):
                        r = c.request("PUT", key_path(f"run{n}-{i % 10}"), f"{rnd}-{i}".encode())
                        if r.status not in (201, 204):
                            failures.append(f"client {n} PUT {i}: {r!r}")
                            return
            except Exception as e:  # noqa: BLE001 - reported below
                failures.append(f"client {n}: {e!r}")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HANG_S)
        check(not any(t.is_alive() for t in threads), f"clients still waiting after {HANG_S:.0f} s")
        check(not failures, f"round {rnd}: {failures[:3]}")
        wakes1 = completion_wakes()
        seen.append((wakes1[0] - wakes0[0], wakes1[1] - wakes0[1]))
        if seen[-1][1] > 0:
            break
    else:
        raise TestFailure(f"{CLIENTS} clients' PUTs never found the worker running when the writer posted: "
                          f"(wake-ups, skipped) per round {seen}")
    for n in range(CLIENTS):
        r = http(S.port, "GET", key_path(f"run{n}-{(PUTS - 1) % 10}"), timeout=HANG_S)
        check(r.status == 200 and r.body == f"{len(seen) - 1}-{PUTS - 1}".encode(), f"GET run{n}: {r!r}")
    check(S.alive(), "the server died")


if __name__ == "__main__":
    run_with_servers("the writer's wake-up per poll phase", cases_of(globals()), lambda: S)
