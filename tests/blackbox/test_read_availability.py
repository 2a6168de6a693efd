"""Reads never go down: GETs of existing keys answer 200 with their exact
bytes while the writer is killed (kill -9) and respawned, while a reload (HUP)
restarts it with other engine settings, and while new keys make the index
grow beside them. No timing threshold: every GET must be a 200 with the right
body, however slow the machine.

A GET that got no byte of response on a keep-alive connection that had
already carried a request is retried once on a new connection (RFC 9112
§9.3.1: a server may close an idle connection at any moment; the reload
replaces the workers). Anything else — a 503, any other status, a wrong or
torn body, a refused connection — is a failure.

The engine-level twins (every store of the index, every step of a recovery)
are in tests/engine/index_multiprocess_test.cc and reader_test.cc; the soak
version with 100 writer kills at 1M keys is bench/read_availability.py.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_read_availability.py
"""

import json
import os
import random
import signal
import sys
import threading
import time

from kingx_harness import (Conn, ConnectionClosed, Server, TestFailure, build_request, check, key_path,
                           make_value, require_bin, run_cases)

S = None
CONFIG = None
KEYS = 3000
READERS = 3


def write_config(doc):
    tmp = CONFIG + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, CONFIG)


def fresh_server(config):
    """A new server (2 workers) whose settings come from a config file, so a
    HUP can change them; loaded with KEYS keys. Returns {key: value}."""
    global S, CONFIG
    if S is not None:
        S.cleanup()
    S = Server([])
    CONFIG = os.path.join(S.workdir, "kingx.json")
    write_config(config)
    S.extra = ["--config", CONFIG]
    S.start()
    rng = random.Random(7)
    values = {}
    with Conn(S.port) as c:
        # Pipelined, 50 at a time: quick even on a loaded machine.
        keys = [f"avail-{i}" for i in range(KEYS)]
        for start in range(0, KEYS, 50):
            batch = keys[start:start + 50]
            for k in batch:
                values[k] = make_value(k.encode(), 0, 1, rng, size=rng.choice([10, 100, 700, 3000]))
                c.send(build_request("PUT", key_path(k), values[k]))
            for k in batch:
                r = c.read_response()
                check(r.status == 201, f"preload PUT {k}: {r!r}")
    return values


class GetLoad(threading.Thread):
    """GETs of random existing keys on one keep-alive connection until told to
    stop (bounded by max_s). Records every failure."""

    def __init__(self, values, seed, max_s=300.0):
        super().__init__(daemon=True)
        self.values = values
        self.keys = list(values)
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.max_s = max_s
        self.ok = 0
        self.failures = []  # (key, what)

    def run(self):
        deadline = time.monotonic() + self.max_s
        conn = None
        used = False
        while not self.stop.is_set() and time.monotonic() < deadline:
            key = self.rng.choice(self.keys)
            for attempt in (0, 1):
                try:
                    if conn is None:
                        conn = Conn(S.port, timeout=30.0)
                        used = False
                    r = conn.request("GET", key_path(key))
                    used = True
                except ConnectionClosed as e:
                    retry = used and e.partial == 0 and attempt == 0
                    if conn is not None:
                        conn.close()
                    conn = None
                    if retry:
                        continue
                    self.failures.append((key, f"no response: {e}"))
                    break
                except OSError as e:
                    if conn is not None:
                        conn.close()
                    conn = None
                    self.failures.append((key, f"connection error: {e}"))
                    break
                if r.status != 200:
                    self.failures.append((key, f"status {r.status}: {r.body[:200]!r}"))
                elif r.body != self.values[key]:
                    self.failures.append((key, f"wrong body ({len(r.body)} bytes, want {len(self.values[key])})"))
                else:
                    self.ok += 1
                if r.header("Connection") == "close":
                    conn.close()
                    conn = None
                break
        if conn is not None:
            conn.close()


def with_get_load(values, action):
    """Runs action() while READERS GET loads run; returns the loads."""
    loads = [GetLoad(values, seed) for seed in range(READERS)]
    for g in loads:
        g.start()
    try:
        time.sleep(0.3)
        action()
        time.sleep(0.3)
    finally:
        for g in loads:
            g.stop.set()
        for g in loads:
            g.join(60)
    return loads


def check_loads(loads, what):
    failures = [f for g in loads for f in g.failures]
    ok = sum(g.ok for g in loads)
    print(f"  {what}: {ok} GETs answered 200 with the right bytes, {len(failures)} failed", flush=True)
    check(not failures, f"{len(failures)} failed GETs {what}:\n  " +
          "\n  ".join(f"{k}: {w}" for k, w in failures[:20]))
    check(ok > 100, f"only {ok} GETs ran {what}: no load")


def wait_new_writer(old):
    new = S.wait_children("kingx-writer", 1, exclude=[old], timeout=30)[0]
    S.wait_ready(30)
    return new


def test_writer_kill_minus_9_under_get_load():
    values = fresh_server({"workers": 2, "segment_bytes": "1M"})

    def kills():
        for _ in range(4):
            writer = S.wait_children("kingx-writer", 1)[0]
            os.kill(writer, signal.SIGKILL)
            wait_new_writer(writer)
            time.sleep(0.2)

    check_loads(with_get_load(values, kills), "across 4 writer kills")


def test_reload_that_restarts_the_writer_under_get_load():
    values = fresh_server({"workers": 2, "segment_bytes": "1M", "sync": "always"})

    def reloads():
        for config in ({"workers": 2, "segment_bytes": "2M", "sync": "interval:50"},
                       {"workers": 2, "segment_bytes": "1M", "sync": "always"}):
            writer = S.wait_children("kingx-writer", 1)[0]
            write_config(config)
            S.signal(signal.SIGHUP)
            wait_new_writer(writer)
            time.sleep(0.2)

    check_loads(with_get_load(values, reloads), "across 2 reloads that restart the writer")


def test_gets_of_existing_keys_while_new_keys_grow_the_index():
    # The index starts at 64 Ki slots: ~80,000 new keys grow it at least twice.
    # sync none: what is measured is the index, not fdatasync.
    values = fresh_server({"workers": 2, "sync": "none"})
    inserted = [0]

    def inserts():
        deadline = time.monotonic() + 240
        with Conn(S.port, timeout=30.0) as c:
            n = 0
            while n < 80000 and time.monotonic() < deadline:
                for i in range(64):
                    c.send(build_request("PUT", key_path(f"grow-{n + i}"), b"v%d" % (n + i)))
                for i in range(64):
                    r = c.read_response()
                    check(r.status == 201, f"PUT grow-{n + i}: {r!r}")
                n += 64
            inserted[0] = n

    loads = with_get_load(values, inserts)
    check(inserted[0] >= 80000, f"only {inserted[0]} new keys inserted in 240 s")
    check_loads(loads, f"while {inserted[0]} new keys were inserted")


if __name__ == "__main__":
    require_bin()
    try:
        sys.exit(run_cases("reads never go down", [(n[5:], f) for n, f in globals().items()
                                                  if n.startswith("test_") and callable(f)],
                           server=lambda: S))
    finally:
        if S is not None:
            S.cleanup()
