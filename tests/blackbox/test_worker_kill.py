"""kill -9 of one worker (and of the writer) under write load.

Worker: the master respawns it; every acknowledged write stays readable; the
only failed requests are those of connections the killed worker held (each
client connection is mapped to the worker holding its server side through
/proc/net/tcp and /proc/PID/fd); the load goes on afterwards.
Writer: the master respawns it; workers keep their connections; writes in
flight may fail (5xx or no answer) but none acknowledged is lost, and writes
succeed again once the new writer has recovered. A large upload whose staging
the killed writer had begun (its first parts consumed, the queue drained) is
answered 503 + Retry-After naming the restart when its body ends, and not
stored (a server error it is not: the client may send it again).

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_worker_kill.py
"""

import os
import re
import signal
import threading
import time

from kingx_harness import (SOAK, Conn, Server, build_request, cases_of, check, http, key_path, metric,
                           run_with_server, wait_for)
from kingx_load import ClientState, LoadClient, verify_states

CLIENTS = 8
S = None


def start_clients(states, stop, mix=(100, 0, 0)):
    clients = [LoadClient(lambda: S.port, st, stop, mix=mix, policy="reconnect",
                          locate=lambda conn: S.worker_of_client_port(conn.local_port()),
                          deadline=time.monotonic() + 120, value_size=None)
               for st in states]
    for c in clients:
        c.start()
    return clients


def stop_clients(clients, stop):
    stop.set()
    for c in clients:
        c.join(30)
        check(not c.is_alive(), f"client {c.st.client_id} did not stop")


def test_worker_kill_under_write_load():
    workers = S.wait_children("kingx-worker", 2)
    states = [ClientState(c, [b"wk-%d-%d" % (c, i) for i in range(10)], 1000 + c) for c in range(CLIENTS)]
    stop = threading.Event()
    clients = start_clients(states, stop, mix=(80, 20, 0))
    try:
        wait_for(lambda: all(st.acked_puts >= 20 for st in states) and
                 all(c.conn_worker is not None for c in clients if c.conn), 30, "20 acknowledged PUTs per client")
        by_worker = {}
        for c in clients:
            by_worker.setdefault(c.conn_worker, []).append(c.st.client_id)
        check(len([w for w in by_worker if w in workers]) >= 1, f"clients not on known workers: {by_worker}")
        victim = max((w for w in by_worker if w in workers), key=lambda w: len(by_worker[w]))
        victim_clients = set(by_worker[victim])
        survivors = [c for c in clients if c.st.client_id not in victim_clients]
        print(f"workers {workers}; clients by worker {by_worker}; killing {victim}", flush=True)
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        new = S.wait_children("kingx-worker", 2, exclude=[victim], timeout=15)
        t_respawn = time.monotonic()
        print(f"respawned: workers now {new} after {t_respawn - t_kill:.2f}s", flush=True)
        before = {c.st.client_id: c.st.acked_puts for c in clients}
        wait_for(lambda: all(c.st.acked_puts >= before[c.st.client_id] + 10 for c in clients), 30,
                 "10 more acknowledged PUTs from every client after the respawn")
    finally:
        stop_clients(clients, stop)
    errors = [e for c in clients for e in c.errors]
    print("failed requests per client: " + ", ".join(f"{c.st.client_id}:{len(c.failures)}" for c in clients)
          + f" (clients of the killed worker: {sorted(victim_clients)})", flush=True)
    check(not errors, "contract violations under load:\n  " + "\n  ".join(errors[:20]))
    for c in clients:
        for f in c.failures:
            # A failed request must have been on a connection of the killed worker,
            # or a reconnect racing the kill itself (before the respawn was seen).
            on_victim = f.worker == victim
            racing = f.worker is None and t_kill <= f.when <= t_respawn + 1.0
            check(on_victim or racing, f"client {c.st.client_id} (on {c.conn_worker}) saw a failure "
                                       f"outside the killed worker {victim}: {f}")
    for c in survivors:
        check(not c.failures, f"client {c.st.client_id} of a surviving worker saw failures: {c.failures}")
    errs = verify_states(S.port, states, settle=False)
    check(not errs, "acknowledged writes lost after the worker kill:\n  " + "\n  ".join(errs[:20]))
    check(S.alive(), "master died")
    wait_for(lambda: str(victim) in open(S.error_log, errors="replace").read(), 60,
             f"the error log to mention the death of worker {victim}")


def test_writer_kill_under_write_load():
    writer = S.wait_children("kingx-writer", 1)[0]
    workers_before = set(S.workers())
    states = [ClientState(c, [b"wr-%d-%d" % (c, i) for i in range(10)], 2000 + c) for c in range(4)]
    stop = threading.Event()
    clients = start_clients(states, stop, mix=(80, 20, 0))
    try:
        wait_for(lambda: all(st.acked_puts >= 10 for st in states), 30, "10 acknowledged PUTs per client")
        os.kill(writer, signal.SIGKILL)
        new = S.wait_children("kingx-writer", 1, exclude=[writer], timeout=15)
        print(f"writer {writer} killed, respawned as {new}", flush=True)
        S.wait_ready(timeout=30)
        before = {c.st.client_id: c.st.acked_puts for c in clients}
        wait_for(lambda: all(c.st.acked_puts >= before[c.st.client_id] + 10 for c in clients), 30,
                 "10 more acknowledged PUTs from every client after the writer came back")
    finally:
        stop_clients(clients, stop)
    errors = [e for c in clients for e in c.errors]
    print("failed requests per client: " + ", ".join(f"{c.st.client_id}:{len(c.failures)}" for c in clients),
          flush=True)
    check(not errors, "contract violations under load:\n  " + "\n  ".join(errors[:20]))
    check(workers_before <= set(S.workers()), f"workers changed when the writer died: "
                                              f"{workers_before} -> {S.workers()}")
    errs = verify_states(S.port, states, settle=False)
    check(not errs, "acknowledged writes lost after the writer kill:\n  " + "\n  ".join(errs[:20]))


def test_writer_kill_during_a_large_upload():
    key = b"large-across-writer-kill"
    value = os.urandom(3 << 20)  # over 1 MiB: staged by the writer, part by part
    half = len(value) // 2
    writer = S.wait_children("kingx-writer", 1)[0]
    with Conn(S.port, timeout=30) as c:
        c.send(build_request("PUT", key_path(key), headers=[("Content-Length", str(len(value)))]) + value[:half])
        # The writer has begun staging it, and has consumed every queued entry.
        wait_for(lambda: (metric(S.port, "kingx_writer_staged_bytes") or 0) > 0
                 and metric(S.port, "kingx_write_queue_bytes") == 0, 30, "the upload's first parts staged")
        os.kill(writer, signal.SIGKILL)
        S.wait_children("kingx-writer", 1, exclude=[writer], timeout=15)
        S.wait_ready(timeout=30)
        c.send(value[half:])
        r = c.read_response()
    check(r.status == 503 and r.header("Retry-After") is not None,
          f"a large upload across a writer restart: {r!r} (want 503 + Retry-After: not stored, send it again)")
    check(b"restart" in r.body, f"the problem does not say the writer restarted: {r.body!r}")
    check(http(S.port, "GET", key_path(key)).status == 404, "the upload the restart cut was stored")
    r = http(S.port, "PUT", key_path(key), value, timeout=30)
    check(r.status == 201, f"the same upload sent again: {r!r}")
    check(http(S.port, "GET", key_path(key), timeout=30).body == value, "the value sent again reads back wrong")


def test_repeated_worker_kills_keep_serving():
    rounds = 20 if SOAK else 3
    for i in range(rounds):
        victim = S.wait_children("kingx-worker", 2)[i % 2]
        os.kill(victim, signal.SIGKILL)
        S.wait_children("kingx-worker", 2, exclude=[victim], timeout=15)
        S.wait_ready(timeout=15)


def _next_backoff_ms(previous_ms):
    """The wait the master schedules after a quick death that followed a wait
    of previous_ms: 100 ms first, then doubling, at most 10 s."""
    return 100 if previous_ms == 0 else min(previous_ms * 2, 10_000)


def test_quick_deaths_back_off():
    """A worker that dies soon after its start is respawned only after a wait
    that doubles with each quick death (README: "respawned (rate-limited)"). The
    error log names each wait; the respawn is never seen earlier than it (a
    lower bound only: a loaded machine may respawn later, never sooner)."""
    started = re.compile(r"worker process (\d+) started \(index 0,")
    waits = re.compile(r"respawning worker 0 in (\d+) ms")
    with open(S.error_log, "rb") as f:
        log = f.read()
    mark = len(log)
    log = log.decode("utf-8", "replace")
    victim = int(started.findall(log)[-1])
    check(victim in S.workers(), f"worker 0 ({victim}) is not alive: {S.children()}")
    respawns_before = metric(S.port, "kingx_respawns_total")
    delays = []
    for _ in range(4):
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        S.wait_children("kingx-worker", 2, exclude=[victim], timeout=30)
        t_seen = time.monotonic()
        new = ""

        def logged():
            nonlocal mark, new
            with open(S.error_log, "rb") as f:
                f.seek(mark)
                raw = f.read()
            mark += len(raw)
            new += raw.decode("utf-8", "replace")
            return started.search(new) is not None

        wait_for(logged, 60, "the log line of worker 0's respawn")
        wait_ms = [int(w) for w in waits.findall(new)]
        respawned = [int(p) for p in started.findall(new)]
        check(len(wait_ms) == 1 and len(respawned) == 1,
              f"expected one respawn of worker 0 in the log, found waits {wait_ms}, starts {respawned}:\n{new[-3000:]}")
        check(t_seen - t_kill >= wait_ms[0] / 1000.0 - 0.01,
              f"worker 0 was respawned {t_seen - t_kill:.3f} s after its death, before its {wait_ms[0]} ms wait")
        delays.append(wait_ms[0])
        victim = respawned[0]
    print(f"respawn waits after four quick deaths of worker 0: {delays} ms", flush=True)
    for previous, wait in zip(delays, delays[1:]):
        check(wait == _next_backoff_ms(previous),
              f"the waits {delays} ms do not double after quick deaths (expected {_next_backoff_ms(previous)} "
              f"after {previous})")
    check(delays[-1] >= 400, f"four quick deaths ended with a wait of only {delays[-1]} ms: {delays}")
    wait_for(lambda: metric(S.port, "kingx_respawns_total") == respawns_before + 4, 60,
             "kingx_respawns_total to count the four respawns")


def main():
    global S
    S = Server(["--workers", "2"])
    run_with_server("worker and writer kill -9", S, cases_of(globals()))


if __name__ == "__main__":
    main()
