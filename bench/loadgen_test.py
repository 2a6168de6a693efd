#!/usr/bin/env python3
"""Tests of bench/loadgen against servers whose behaviour is known exactly (meson suite 'bench').

Every check holds whatever the machine's speed: the server records, on the same clock as loadgen
(CLOCK_MONOTONIC), when each request arrived and each answer left, and loadgen reports its
window's edges on that clock (clock_ns), so a slow or loaded machine only loosens a bound.

1. Starvation is counted, not hidden: a server that answers only its first K connections and
   never the others. loadgen (closed loop, N connections) must report at least N-K clients with
   no answer (at most N-K plus the served ones that got fewer than two answers in the window),
   each counted as waiting from no later than its request reached the server to the window's
   end, and per-client counts that add up.
2. No coordinated omission: a server that answers each request 20 ms after the previous answer
   (or its arrival), one at a time, on one connection. At a fixed 100 req/s the requests fall
   due every 10 ms but are served every 20 ms, so the backlog grows through the run. loadgen
   --rate must count each request from its due time: each latency quantile it reports is at
   least that quantile of the bounds the server's readings give (an answer: when it left minus
   when it was due; a request unanswered at the end: its age then), and the answers plus the
   censored requests are exactly the requests due in the window. h2load --rps on the same
   server is shown for comparison (its latency excludes the wait).
3. The clock starts after the connections and the warm-up: every client is connected before
   it, the window starts at least the warm-up after the warm-up began and lasts at least the
   duration, and loadgen counts no more answers than the server sent in the window plus one in
   flight per connection (the warm-up's answers are not counted).

Usage: loadgen_test.py PATH/TO/loadgen. Python standard library only; servers on 127.0.0.1 with
ephemeral ports, every loop bounded in time.
"""

import json
import math
import selectors
import shutil
import socket
import subprocess
import sys
import threading
import time

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Server(threading.Thread):
    """Accepts every connection; answers requests on the first `serve_first` connections (in
    accept order), each `delay_s` after the previous answer or its arrival, whichever is later;
    reads and ignores everything on the others. Records on CLOCK_MONOTONIC (time.monotonic_ns,
    loadgen's clock) when each connection's first bytes arrived (`first_arrival_ns`, by accept
    order: a reading after they arrived) and when each answer left (`sent`: (connection, a
    reading before it left, one after), in order). Stops when stop() is called."""

    def __init__(self, serve_first, delay_s=0.0):
        super().__init__(daemon=True)
        self.serve_first = serve_first
        self.delay_s = delay_s
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1024)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.accepted = 0
        self.answered = 0
        self.first_arrival_ns = {}
        self.sent = []
        self._halt = threading.Event()

    def stop(self):
        self._halt.set()
        self.join(timeout=10)

    def run(self):
        sel = selectors.DefaultSelector()
        sel.register(self.lsock, selectors.EVENT_READ, None)
        state = {}  # sock -> [served?, buffer, queue of answer times, accept index]
        while not self._halt.is_set():
            now = time.monotonic()
            for key, _ in sel.select(timeout=0.002):
                if key.data is None:
                    try:
                        c, _ = self.lsock.accept()
                    except BlockingIOError:
                        continue
                    c.setblocking(False)
                    state[c] = [self.accepted < self.serve_first, b"", [], self.accepted]
                    self.accepted += 1
                    sel.register(c, selectors.EVENT_READ, "c")
                    continue
                c = key.fileobj
                try:
                    data = c.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(c)
                    c.close()
                    state.pop(c, None)
                    continue
                st = state[c]
                # Read after the bytes arrived: a later reading than the arrival, never earlier.
                self.first_arrival_ns.setdefault(st[3], time.monotonic_ns())
                if not st[0]:
                    continue
                st[1] += data
                while b"\r\n\r\n" in st[1]:
                    _, st[1] = st[1].split(b"\r\n\r\n", 1)
                    last = st[2][-1] if st[2] else now
                    st[2].append(max(now, last) + self.delay_s)
            now = time.monotonic()
            for c, st in list(state.items()):
                while st[2] and st[2][0] <= now:
                    st[2].pop(0)
                    before = time.monotonic_ns()
                    try:
                        c.sendall(RESPONSE)
                        self.sent.append((st[3], before, time.monotonic_ns()))
                        self.answered += 1
                    except OSError:
                        break
        for c in state:
            c.close()
        self.lsock.close()


def run_loadgen(loadgen, port, *args):
    out = subprocess.run([loadgen, "--port", str(port), *args], capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        fail(f"loadgen exited {out.returncode}: {out.stderr}")
    line = next((l for l in out.stdout.splitlines() if l.startswith("LOADGEN ")), None)
    if line is None:
        fail(f"loadgen printed no LOADGEN line: {out.stdout[:500]}")
    return json.loads(line[len("LOADGEN "):])


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def surely_sent_between(srv, lo_ns, hi_ns, conn=None):
    """Answers (of one connection, or all) that certainly left the server in [lo_ns, hi_ns]."""
    return sum(1 for c, b, a in srv.sent if lo_ns <= b and a <= hi_ns and (conn is None or c == conn))


def maybe_sent_between(srv, lo_ns, hi_ns):
    """Answers that may have left the server in [lo_ns, hi_ns]."""
    return sum(1 for _, b, a in srv.sent if lo_ns <= a and b <= hi_ns)


def test_starved_clients_count(loadgen):
    n, k, secs = 20, 5, 1.5
    srv = Server(serve_first=k)
    srv.start()
    try:
        g = run_loadgen(loadgen, srv.port, "--conns", str(n), "--duration", str(secs))
    finally:
        srv.stop()
    start, end = g["clock_ns"]["start"], g["clock_ns"]["end"]
    # A served connection with two answers sent in the window read the first before it sent its
    # second request: it has at least one answer counted. The others may have none.
    served_twice = sum(1 for c in range(k) if surely_sent_between(srv, start, end, c) >= 2)
    if not n - k <= g["clients_zero"] <= n - k + (k - served_twice):
        fail(f"{n - k} clients were never answered and {served_twice} of the {k} served got two "
             f"answers in the window; loadgen counted {g['clients_zero']} without an answer")
    if sum(g["client_ok"]) != g["requests_ok"] or g["requests_ok"] < served_twice:
        fail(f"per-client counts {sum(g['client_ok'])}, total {g['requests_ok']}, at least "
             f"{served_twice} answers read in the window")
    # A client without an answer waits on its first request of the window, which reached the
    # server no later than the latest first arrival: it is counted from then to the end at least.
    if len(srv.first_arrival_ns) != n:
        fail(f"{len(srv.first_arrival_ns)} of {n} connections sent a request")
    waited_us = (end - max(srv.first_arrival_ns.values())) // 1000
    starved = [m for ok, m in zip(g["client_ok"], g["client_mean_us"]) if ok == 0]
    if min(starved) < waited_us or max(starved) > (end - start) // 1000 + 1:
        fail(f"a client without an answer must count as waiting from its request to the end of "
             f"the window ({waited_us} us at least, {(end - start) // 1000} us at most): {starved}")
    if g["latency_us"]["censored"] < n - k:
        fail(f"the {n - k} unanswered requests must be counted (censored), got {g['latency_us']}")
    if g["client_rps"]["min"] != 0 or g["client_rps"]["median"] != 0:
        fail(f"min and median client rate must be 0 with {n - k}/{n} starved: {g['client_rps']}")
    print(f"ok: starvation counted ({g['clients_zero']}/{n} clients without answer, "
          f"waited {min(starved) / 1e6:.2f} s, at least {waited_us / 1e6:.2f} s)")


def test_open_loop_counts_backlog(loadgen):
    secs, rate, delay = 2.0, 100, 0.020
    srv = Server(serve_first=1, delay_s=delay)
    srv.start()
    try:
        g = run_loadgen(loadgen, srv.port, "--conns", "1", "--duration", str(secs),
                        "--rate", str(rate))
    finally:
        srv.stop()
    lat = g["latency_us"]
    start, end = g["clock_ns"]["start"], g["clock_ns"]["end"]
    if g["responses_other"] or g["errors"]:
        fail(f"only 200s were sent: {g['responses_other']} other answers, {g['errors']} errors")
    # Request j is due at start + j/rate (loadgen's schedule, one connection) and sent no
    # earlier; the server answers in order, so the j-th answer answers request j. An answer
    # followed by another sent before the end was read in the window (the next request was sent
    # after it): loadgen counted it, at its due time.
    due = [start + int(j * 1e9 / rate) for j in range(int((end - start) * rate / 1e9) + 2)]
    due = [t for t in due if t < end]
    sent = [(b, a) for _, b, a in srv.sent]
    read = [j for j in range(len(sent) - 1) if sent[j + 1][1] < end]
    maybe = len([1 for b, _ in sent if b < end])
    if not len(read) <= g["requests_ok"] <= maybe:
        fail(f"{len(read)} answers were read in the window and at most {maybe} sent before its "
             f"end; loadgen counted {g['requests_ok']}")
    if g["requests_ok"] + lat["censored"] != len(due):
        fail(f"{len(due)} requests fell due in the window: {g['requests_ok']} answered + "
             f"{lat['censored']} censored")
    # Each latency from its due time, at least: an answer counted (requests 0 .. ok-1, read in
    # the window) from before it left the server; a request still due at the end (ok and after)
    # at its age then, end - due. Each quantile loadgen reports (the upper edge of its bucket)
    # is then at least the same quantile of these bounds.
    ok = g["requests_ok"]
    bounds = sorted([max(0, sent[j][0] - due[j]) // 1000 for j in range(ok)] +
                    [(end - due[j]) // 1000 for j in range(ok, len(due))])
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)):
        least = bounds[max(1, math.ceil(q * len(bounds))) - 1]
        if lat[name] < least:
            fail(f"open loop must count each request from its due time: {name} at least "
                 f"{least / 1000:.0f} ms (answers' departures and due requests' ages), loadgen "
                 f"says {lat[name] / 1000:.0f} ms: {lat}")
    backlog_us = max(((sent[j][0] - due[j]) // 1000 for j in read), default=0)
    print(f"ok: open loop shows the backlog (p50 {lat['p50'] / 1000:.0f} ms, max "
          f"{lat['max'] / 1000:.0f} ms, an answer {backlog_us / 1000:.0f} ms after its due time, "
          f"{lat['censored']} unanswered at the end)")
    if shutil.which("h2load"):
        srv = Server(serve_first=1, delay_s=delay)
        srv.start()
        try:
            out = subprocess.run(["h2load", "--h1", "-c1", f"--rps={rate}", f"-D{int(secs)}",
                                  f"http://127.0.0.1:{srv.port}/"], capture_output=True,
                                 text=True, timeout=60)
        finally:
            srv.stop()
        line = next((l for l in out.stdout.splitlines() if l.startswith("time for request")), "")
        print(f"for comparison, h2load --rps={rate} on the same server: {line.strip()}")


def test_warmup_is_not_counted(loadgen):
    n, warmup, secs = 4, 1.0, 1.0
    srv = Server(serve_first=n, delay_s=0.01)  # each connection answered every 10 ms
    srv.start()
    try:
        g = run_loadgen(loadgen, srv.port, "--conns", str(n), "--duration", str(secs),
                        "--warmup", str(warmup), "--connect-timeout", "5")
    finally:
        srv.stop()
    clock = g["clock_ns"]
    if g["connected_at_start"] != n:
        fail(f"every client must be connected before the clock starts: {g['connected_at_start']}/{n}")
    if min(srv.first_arrival_ns.values()) < clock["warmup"]:
        fail(f"a request reached the server before the warm-up began: {srv.first_arrival_ns}, {clock}")
    if clock["start"] - clock["warmup"] < warmup * 1e9 or clock["end"] - clock["start"] < secs * 1e9:
        fail(f"the window must start once the warm-up is over and last the duration: {clock}")
    if abs(g["duration_s"] - (clock["end"] - clock["start"]) / 1e9) > 0.001:
        fail(f"the measured window is {g['duration_s']} s, its clock readings say otherwise: {clock}")
    # An answer counted in the window was read in it: sent in it, or sent before and still on
    # its way at the start (one per connection); an answer sent in it is counted unless it is
    # still on its way at the end (one per connection).
    surely = surely_sent_between(srv, clock["start"], clock["end"])
    maybe = maybe_sent_between(srv, clock["start"], clock["end"])
    before = surely_sent_between(srv, 0, clock["start"])
    if not surely - n <= g["requests_ok"] <= maybe + n:
        fail(f"warm-up answers counted: loadgen {g['requests_ok']}, the server sent {surely} to "
             f"{maybe} in the window and {before} before it")
    print(f"ok: warm-up not counted (loadgen {g['requests_ok']} answers in {g['duration_s']:.2f} s, "
          f"server sent {surely}-{maybe} in the window, {before} before it)")


def main():
    loadgen = sys.argv[1]
    test_starved_clients_count(loadgen)
    test_warmup_is_not_counted(loadgen)
    test_open_loop_counts_backlog(loadgen)


if __name__ == "__main__":
    main()
