#!/usr/bin/env python3
"""Tests of bench/loadgen against servers whose behaviour is known exactly (meson suite 'bench').

1. Starvation is counted, not hidden: a server that answers only its first K connections and
   never the others. loadgen (closed loop, N connections) must report N-K clients with no
   answer, each having waited for the whole run, and per-client counts that add up.
2. No coordinated omission: a server that answers each request 20 ms after it arrived, one at a
   time, on one connection. At a fixed 100 req/s the requests fall due every 10 ms but are
   served every 20 ms, so the backlog (and the latency from the due time) grows through the run.
   loadgen --rate must show it (p99 well above 20 ms); a closed-loop client would see 20 ms.
   h2load --rps on the same server is shown for comparison (its latency excludes the wait).
3. The clock starts after the connections and the warm-up: every client is connected before
   it, and the answers of the warm-up are not counted (the server counts what it sent).

Usage: loadgen_test.py PATH/TO/loadgen. Python standard library only; servers on 127.0.0.1 with
ephemeral ports, every loop bounded in time.
"""

import json
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
    reads and ignores everything on the others. Stops when stop() is called."""

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
        self._halt = threading.Event()

    def stop(self):
        self._halt.set()
        self.join(timeout=10)

    def run(self):
        sel = selectors.DefaultSelector()
        sel.register(self.lsock, selectors.EVENT_READ, None)
        state = {}  # sock -> [served?, buffer, queue of answer times]
        while not self._halt.is_set():
            now = time.monotonic()
            for key, _ in sel.select(timeout=0.002):
                if key.data is None:
                    try:
                        c, _ = self.lsock.accept()
                    except BlockingIOError:
                        continue
                    c.setblocking(False)
                    state[c] = [self.accepted < self.serve_first, b"", []]
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
                if not st[0]:
                    continue
                st[1] += data
                while b"\r\n\r\n" in st[1]:
                    _, st[1] = st[1].split(b"\r\n\r\n", 1)
                    last = st[2][-1] if st[2] else now
                    st[2].append(max(now, last) + self.delay_s)
            for c, st in list(state.items()):
                while st[2] and st[2][0] <= now:
                    st[2].pop(0)
                    try:
                        c.sendall(RESPONSE)
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


def test_starved_clients_count(loadgen):
    n, k, secs = 20, 5, 1.5
    srv = Server(serve_first=k)
    srv.start()
    try:
        g = run_loadgen(loadgen, srv.port, "--conns", str(n), "--duration", str(secs))
    finally:
        srv.stop()
    if g["clients_zero"] != n - k:
        fail(f"{n - k} clients were never answered, loadgen counted {g['clients_zero']}")
    if sum(g["client_ok"]) != g["requests_ok"] or g["requests_ok"] == 0:
        fail(f"per-client counts {sum(g['client_ok'])} != total {g['requests_ok']}")
    starved = sorted(g["client_mean_us"])[-(n - k):]
    if min(starved) < 0.9 * secs * 1e6:
        fail(f"a starved client must count as waiting the whole run, got {min(starved)} us")
    if g["latency_us"]["censored"] < n - k:
        fail(f"the {n - k} unanswered requests must be counted (censored), got {g['latency_us']}")
    if g["client_rps"]["min"] != 0 or g["client_rps"]["median"] != 0:
        fail(f"min and median client rate must be 0 with {n - k}/{n} starved: {g['client_rps']}")
    print(f"ok: starvation counted ({g['clients_zero']}/{n} clients without answer, "
          f"waited {min(starved) / 1e6:.2f} s)")


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
    # Served every 20 ms, due every 10 ms: after t seconds the backlog is ~t/2 seconds of waiting.
    if lat["p50"] < 200_000 or lat["max"] < 600_000:
        fail(f"open loop must show the growing backlog (p50 >= 200 ms, max >= 600 ms): {lat}")
    if not 0.35 * rate * secs <= g["requests_ok"] <= 0.6 * rate * secs:
        fail(f"the server answers 50/s: expected ~{rate * secs / 2:.0f} answers, got {g['requests_ok']}")
    if lat["censored"] < 0.3 * rate * secs:
        fail(f"requests due and unanswered at the end must be counted: {lat}")
    print(f"ok: open loop shows the backlog (p50 {lat['p50'] / 1000:.0f} ms, max "
          f"{lat['max'] / 1000:.0f} ms, {lat['censored']} unanswered at the end)")
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
    if g["connected_at_start"] != n:
        fail(f"every client must be connected before the clock starts: {g['connected_at_start']}/{n}")
    if abs(g["duration_s"] - secs) > 0.2:
        fail(f"the measured window is the duration, not warm-up + duration: {g['duration_s']} s")
    # The server answered during the warm-up too; loadgen must not count those answers.
    if not (0 < g["requests_ok"] < 0.75 * srv.answered):
        fail(f"warm-up answers counted: loadgen {g['requests_ok']}, server sent {srv.answered}")
    print(f"ok: warm-up not counted (loadgen {g['requests_ok']} answers in {g['duration_s']:.2f} s, "
          f"server sent {srv.answered} in {warmup + secs:.0f} s)")


def main():
    loadgen = sys.argv[1]
    test_starved_clients_count(loadgen)
    test_warmup_is_not_counted(loadgen)
    test_open_loop_counts_backlog(loadgen)


if __name__ == "__main__":
    main()
