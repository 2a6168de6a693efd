"""The data directory stays within twice the live data while clients overwrite
as fast as the server answers: when compaction's backlog passes its bound,
the writer holds writes until a pass has reclaimed the dead records (a write
stall), however fast the writes come.

A fixed key set whose values sit on both sides of the large-value path (up
to 2 MiB, staged whole in segment files of their own) and of the
compression threshold is overwritten by several clients, each a bounded
number of rounds, with segments far larger than the live data (as with the
default 256 MiB segments and a small database). Throughout, the data
directory's allocated bytes (keys/ included, what `du` counts) are compared
with kingx_engine_live_bytes. The check is a space bound counted in bytes,
not a timing: the writes are what they are, only how many bytes lie on disk
for how many live ones is checked. Then every key reads back as its last
acknowledged value, and /metrics shows the stalls.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_compaction_bound.py
"""

import os
import random
import re
import threading
import time

from kingx_harness import (SOAK, Conn, ConnectionClosed, Server, TestFailure, cases_of, check, dir_bytes, http,
                           key_path, parse_etag, run_with_server)

S = None
MIB = 1 << 20
KEYS = [f"bound-{i}" for i in range(64)]
# Both sides of the large-value path (1 MiB) and of compression (256 B):
# (size, compressible). The large values are random, so that the live data
# (~40 MB) stays well above what one batch of the clients' writes adds at
# once (up to 2 MiB each, staged whole before the batch that ends them): the
# writer holds writes between batches, not within one.
SIZES = [(255, False), (257, True), (65536, True), (300_000, False), (MIB - 1, False), (MIB + 1, False),
         (2 * MIB, False)]
CLIENTS = 3
ROUNDS = 15 if SOAK else 5


def metric(name):
    body = http(S.port, "GET", "/metrics").body.decode()
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", body, re.M)
    check(m is not None, f"/metrics has no {name}")
    return float(m.group(1))


def value_for(key_index, rnd, rng):
    size, compressible = SIZES[(key_index + rnd) % len(SIZES)]
    if not compressible:
        return rng.randbytes(size)
    return (b"compressible %d %d " % (key_index, rnd) * (size // 16 + 1))[:size]


class Client(threading.Thread):
    """Overwrites every key, `rounds` times, as fast as the server answers."""

    def __init__(self, n, rounds, acked, lock):
        super().__init__(daemon=True)
        self.n, self.rounds, self.acked, self.lock = n, rounds, acked, lock
        self.rng = random.Random(100 + n)
        self.errors = []
        self.puts = 0

    def run(self):
        deadline = time.monotonic() + 300
        try:
            with Conn(S.port, timeout=60) as c:
                for rnd in range(self.rounds):
                    order = list(range(len(KEYS)))
                    self.rng.shuffle(order)
                    for i in order:
                        if time.monotonic() > deadline:
                            self.errors.append("the load did not finish within 300 s")
                            return
                        v = value_for(i, rnd * CLIENTS + self.n, self.rng)
                        r = c.request("PUT", key_path(KEYS[i]), v)
                        if r.status not in (201, 204):
                            self.errors.append(f"PUT {KEYS[i]}: {r.status} {r.body[:200]!r}")
                            return
                        etag = parse_etag(r.header("ETag"))
                        with self.lock:
                            # Clients overwrite the same keys: the newest write has the highest ETag.
                            if i not in self.acked or etag > self.acked[i][1]:
                                self.acked[i] = (v, etag)
                        self.puts += 1
        except (OSError, ConnectionClosed, TestFailure) as e:
            self.errors.append(f"client {self.n}: {e!r}")


def test_directory_stays_within_twice_the_live_data_under_full_speed_overwrites():
    acked, lock = {}, threading.Lock()
    # Every key once: the live data (~40 MB) is in place before the ratio counts.
    first = Client(CLIENTS, 1, acked, lock)
    first.run()
    check(not first.errors, f"first write of every key: {first.errors}")
    live_floor = 0.5 * metric("kingx_engine_live_bytes")
    samples = []  # (dir bytes, live bytes)
    stop = threading.Event()

    def sampler():
        for _ in range(100000):
            if stop.is_set():
                return
            d = dir_bytes(S.data_dir)
            try:
                live = metric("kingx_engine_live_bytes")
            except (OSError, ConnectionClosed, TestFailure):
                continue
            samples.append((d, live))
            time.sleep(0.02)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    clients = [Client(n, ROUNDS, acked, lock) for n in range(CLIENTS)]
    t0 = time.monotonic()
    for c in clients:
        c.start()
    for c in clients:
        c.join(320)
    seconds = time.monotonic() - t0
    stop.set()
    th.join(10)
    errors = [e for c in clients for e in c.errors]
    check(not errors, "writes failed:\n  " + "\n  ".join(errors))
    puts = sum(c.puts for c in clients)
    counted = [(d, live) for d, live in samples if live >= live_floor]
    worst = max(counted, key=lambda s: s[0] / s[1])
    over = sum(1 for d, live in counted if d > 2 * live)
    print(f"{puts} PUTs in {seconds:.1f} s; {len(counted)} samples, largest dir/live {worst[0] / worst[1]:.2f} "
          f"({worst[0]} / {worst[1]:.0f} bytes), {over} over 2x", flush=True)
    check(len(counted) >= 10, f"too few samples with the live data in place: {len(counted)} of {len(samples)}")
    check(over == 0, f"the data directory passed twice the live data in {over} of {len(counted)} samples "
          f"(largest {worst[0]} bytes for {worst[1]:.0f} live)")
    stalls = metric("kingx_compaction_write_stalls_total")
    stalled = metric("kingx_compaction_write_stall_seconds_total")
    print(f"{stalls:.0f} write stalls, {stalled:.2f} s stalled", flush=True)
    check(stalls > 0 and stalled > 0, "writes never waited for compaction: the load did not test the bound")
    # The stalls' info line: at least one (a stall logs when it begins), and at
    # most one per 10 s of the writer's life (an upper bound a slow machine
    # only lowers).
    with open(S.error_log, errors="replace") as f:
        lines = [ln for ln in f if re.search(r"\[info\].*writes wait(ed)? for compaction", ln)]
    allowed = int((time.monotonic() - S.started_at) / 10) + 1
    print(f"{len(lines)} write-stall info line(s) in the error log (at most {allowed} allowed)", flush=True)
    check(1 <= len(lines) <= allowed, f"{len(lines)} write-stall info lines, expected 1 to {allowed} "
          f"(one at most every 10 s):\n" + "".join(lines[:20]))
    # The values: each key reads back as its newest acknowledged PUT (highest ETag).
    with Conn(S.port) as c:
        for i, (v, _) in sorted(acked.items()):
            r = c.request("GET", key_path(KEYS[i]))
            check(r.status == 200 and r.body == v, f"GET {KEYS[i]}: {r.status}, {len(r.body)} bytes, "
                  f"not the {len(v)} bytes last acknowledged")


def main():
    global S
    # Segments far larger than the live data, as the default 256 MiB ones are
    # for a small database; a reserve that a small disk can hold.
    S = Server(["--workers", "2", "--segment-bytes", str(64 * MIB), "--disk-reserve-bytes", str(96 * MIB)])
    run_with_server("compaction_bound", S, cases_of(globals()))


if __name__ == "__main__":
    main()
