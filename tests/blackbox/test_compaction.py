"""Compaction seen from outside (the engine's tests cover the inside): a uniform
overwrite load on a fixed key set with small segments makes the data
directory grow far past the live data; compaction (automatic past
--compaction-dead-ratio, or POST /admin/compact on the admin listener only)
brings it back, while readers keep reading the exact latest values with
unchanged ETags, and a restart afterwards still serves them.

The size bound is a functional check, not a performance figure: after
compaction the directory must hold less than half of what was written
(the load writes ~25x the live data).

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_compaction.py
"""

import os
import random
import re
import signal
import threading
import time

from kingx_harness import (SOAK, Conn, ConnectionClosed, Server, TestFailure, cases_of, check,
                           http, key_path, run_with_server)

S = None
ADMIN = None
KEYS = [f"compact-{i}" for i in range(40)]
VALUE_BYTES = 2000
SEGMENT = 65536
latest = {}   # key path -> (value, etag) of the last acknowledged PUT
history = {}  # key path -> [value, ...]: each PUT's value, appended before it is sent
rng = random.Random(5)


def dir_bytes(path):
    """Apparent bytes of the files directly in path; a file compaction
    removes between the listing and its stat is skipped."""
    total = 0
    with os.scandir(path) as it:
        for e in it:
            try:
                if e.is_file(follow_symlinks=False):
                    total += e.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue  # removed meanwhile
    return total


def overwrite_rounds(rounds):
    """Every key rewritten `rounds` times with incompressible values."""
    written = 0
    with Conn(S.port) as c:
        for r in range(rounds):
            for k in KEYS:
                v = rng.randbytes(VALUE_BYTES - 16) + b"%016d" % r
                history.setdefault(key_path(k), []).append(v)
                resp = c.request("PUT", key_path(k), v)
                check(resp.status in (201, 204), f"PUT {k}: {resp!r}")
                latest[key_path(k)] = (v, resp.header("ETag"))
                written += len(v)
    return written


def wait_for_size(limit, timeout, what):
    deadline = time.monotonic() + timeout
    size = dir_bytes(S.data_dir)
    while time.monotonic() < deadline:
        size = dir_bytes(S.data_dir)
        if size <= limit:
            return size
        time.sleep(0.2)
    raise TestFailure(f"{what}: data dir still {size} bytes after {timeout}s (limit {limit}); "
                      f"files: {sorted(os.listdir(S.data_dir))}")


class Reader(threading.Thread):
    """Reads every key in a loop while writes and compaction run. A read may
    return the value acknowledged before it was sent or any value whose PUT
    was sent before its response arrived (the writer is one sequential
    connection, so that is a short window of `history`)."""

    def __init__(self, stop):
        super().__init__(daemon=True)
        self.stop, self.errors, self.reads = stop, [], 0

    def run(self):
        deadline = time.monotonic() + 120
        try:
            with Conn(S.port) as c:
                while not self.stop.is_set() and time.monotonic() < deadline and len(self.errors) < 10:
                    for path in list(latest):
                        acked, _ = latest[path]
                        hist = history[path]
                        first = len(hist) - 1 - hist[::-1].index(acked)
                        r = c.request("GET", path)
                        allowed = history[path][first:]
                        self.reads += 1
                        if r.status != 200 or r.body not in allowed:
                            self.errors.append(f"GET {path} during writes and compaction: {r.status}, "
                                               f"{len(r.body)} bytes, not one of the {len(allowed)} "
                                               f"values acknowledged or in flight")
        except (ConnectionClosed, OSError) as e:
            self.errors.append(f"reader connection failed: {e!r}")


def check_all_latest(what):
    with Conn(S.port) as c:
        for path, (v, etag) in latest.items():
            r = c.request("GET", path)
            check(r.status == 200 and r.body == v, f"{what}: GET {path}: {r.status}, {len(r.body)} bytes")
            check(r.header("ETag") == etag, f"{what}: ETag of {path} changed {etag} -> {r.header('ETag')}")


def test_automatic_compaction_reclaims_overwritten_space_while_readers_read():
    rounds = 60 if SOAK else 25
    stop = threading.Event()
    overwrite_rounds(2)
    reader = Reader(stop)
    reader.start()
    try:
        written = overwrite_rounds(rounds) + len(KEYS) * VALUE_BYTES * 2
        size = wait_for_size(written // 2, 60, "automatic compaction")
        time.sleep(0.5)
    finally:
        stop.set()
        reader.join(30)
    print(f"wrote {written} bytes, live ~{len(KEYS) * VALUE_BYTES}, data dir now {size}; "
          f"{reader.reads} reads", flush=True)
    check(not reader.errors, "readers saw wrong values:\n  " + "\n  ".join(reader.errors))
    check(reader.reads > 0, "the reader made no reads")
    check_all_latest("after automatic compaction")


def compaction_metrics():
    body = http(S.port, "GET", "/metrics").body.decode()
    out = {}
    for name in ("passes_total", "failures_total", "segments_deleted_total", "segments_written_total",
                 "read_bytes_total", "written_bytes_total", "reclaimed_bytes_total", "backlog_bytes"):
        m = re.search(r"^kingx_compaction_" + name + r" (\S+)$", body, re.M)
        check(m is not None, f"/metrics has no kingx_compaction_{name}")
        out[name] = float(m.group(1))
    m = re.search(r"^kingx_engine_dead_bytes (\S+)$", body, re.M)
    out["engine_dead_bytes"] = float(m.group(1))
    return out


def test_compaction_metrics_count_the_work_done_and_survive_a_writer_restart():
    # The first case's passes deleted and wrote segments: every counter moved.
    before = compaction_metrics()
    for name in ("passes_total", "segments_deleted_total", "segments_written_total", "read_bytes_total",
                 "written_bytes_total", "reclaimed_bytes_total"):
        check(before[name] > 0, f"kingx_compaction_{name} is {before[name]} after compaction ran: {before}")
    check(before["read_bytes_total"] > before["written_bytes_total"] / 2,
          f"a pass reads at least the records it copies: {before}")
    check(0 <= before["backlog_bytes"] <= before["engine_dead_bytes"], f"backlog within the dead bytes: {before}")
    # A new writer process starts its compactor from zero; the counters the
    # workers show stay monotonic.
    writers = S.wait_children("kingx-writer", 1)
    os.kill(writers[0], signal.SIGKILL)
    S.wait_children("kingx-writer", 1, exclude=writers, timeout=30)
    S.wait_ready()
    after = compaction_metrics()
    for name in ("passes_total", "segments_deleted_total", "segments_written_total", "read_bytes_total",
                 "written_bytes_total", "reclaimed_bytes_total", "failures_total"):
        check(after[name] >= before[name], f"kingx_compaction_{name} went back across a writer restart: "
              f"{before[name]} -> {after[name]}")


def test_admin_compact_only_on_the_admin_listener():
    # The main listener has no /admin/* at all: every method gets the 404 of
    # an unknown path, with the same wording.
    unknown = http(S.port, "GET", "/no-such-path").json()["detail"]
    for method in ("POST", "GET", "DELETE", "PUT"):
        r = http(S.port, method, "/admin/compact", b"" if method in ("POST", "PUT") else None)
        check(r.status == 404 and r.json()["detail"] == unknown,
              f"{method} /admin/compact on the main listener: the unknown-path 404 expected: {r!r}")
    # The admin listener has no key-value API (no key, no listing), but the probes and metrics.
    for path in ("/v1/kv/anything", "/v1/kv/", "/v1/kv/?limit=1"):
        r = http(ADMIN, "GET", path)
        check(r.status == 404 and r.json()["detail"] == unknown, f"GET {path} on the admin listener: {r!r}")
    for path in ("/healthz", "/readyz", "/metrics"):
        check(http(ADMIN, "GET", path).status == 200, f"GET {path} on the admin listener")
    r = http(ADMIN, "GET", "/admin/compact")
    check(r.status == 405 and r.header("Allow") == "POST", f"GET /admin/compact on the admin listener: {r!r}")
    r = http(ADMIN, "POST", "/admin/compact", b"")
    check(r.status == 202, f"/admin/compact on the admin listener: {r!r}")
    written = overwrite_rounds(10)
    r = http(ADMIN, "POST", "/admin/compact", b"")
    check(r.status == 202, f"/admin/compact: {r!r}")
    wait_for_size(written // 2, 60, "compaction after /admin/compact")
    check_all_latest("after /admin/compact")


def test_admin_compact_with_compaction_off_is_409_naming_the_setting():
    # --compaction off runs no pass at all: a 202 would accept a request nothing serves (the
    # passes counter stayed 0). 409 naming the setting, as a read-only server answers.
    with Server(["--compaction", "off", "--workers", "1"], admin=True) as s:
        r = http(s.admin_port, "POST", "/admin/compact", b"")
        check(r.status == 409 and r.header("Content-Type") == "application/problem+json"
              and "--compaction off" in r.json()["detail"], f"POST /admin/compact with --compaction off: {r!r}")


def test_restart_after_compaction_keeps_values_and_etags():
    status = S.stop()
    check(status == 0, f"TERM exit status {status}")
    S.port = None
    S.start()
    check_all_latest("after restart")
    r = http(S.port, "PUT", key_path(KEYS[0]), b"after")
    from kingx_harness import parse_etag
    newest = max(parse_etag(e) for _, e in latest.values())
    check(parse_etag(r.header("ETag")) > newest, f"ETag after restart {r.header('ETag')} not above {newest}")


def main():
    global S
    S = Server(["--workers", "2", "--segment-bytes", str(SEGMENT), "--compaction-dead-ratio", "0.3",
                "--compression-level", "0"], admin=True)

    def ready(server):
        global ADMIN
        ADMIN = server.admin_port
    run_with_server("compaction", S, cases_of(globals()), ready=ready)


if __name__ == "__main__":
    main()
