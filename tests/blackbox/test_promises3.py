"""Promises of README.md that no other test held the real binary to (the
third part; test_promises.py and test_promises2.py have the others), each
checked where a client sees it, with no timing threshold:

  - `--sync interval:MS`: a write is acknowledged after write(), and the
    writer fdatasyncs at least every MS while writes come: over a run of
    PUTs one after another, `kingx_writer_fsync_seconds_count` grew by at
    least one for every stretch of the run in which a PUT was sent more
    than MS after an earlier one was answered (the writer must have synced
    the earlier one's bytes by the time it answers the later one), and by
    at most one per MS of the whole run (plus one): it syncs by the
    period, not after each write. Both bounds come from the client's own
    clock readings around each PUT, so a slow or loaded machine makes
    them looser, never false;
  - `kingx_index_growths_total` counts each growth of the index table: a
    database of 55,700 keys (bench/fill_db) opens into the initial table of
    65,536 slots with none counted, an overwrite adds none, new keys add
    none up to 55,705 (0.85 of the slots), and the 55,706th grows the table
    once (20 more keys, none);
  - `kingx_writer_batch_size` and `kingx_writer_apply_seconds` are
    histograms whose buckets add up: cumulative, `+Inf` equal to `_count`,
    `_count` equal to `kingx_writer_batches_total`, the batch sizes' `_sum`
    equal to `kingx_writer_records_total`; PUTs one after another are
    batches of one (bucket `le="1"`), ten PUTs queued while the writer is
    stopped are one batch of ten (bucket `le="16"`, not `le="8"`); and a
    group commit, which includes its fdatasync under `--sync always`, is
    never counted in a faster bucket than the fdatasyncs;
  - a lingering close (after a `400`: the FIN sent, what the client still
    sends read and dropped) ends by itself after at most 2 s when the
    client neither closes nor sends: a connection answered `400` is closed
    before another one, connected earlier and silent in the middle of its
    headers, gets its `408` from a 3 s header timeout.

Every server a case starts is stopped by PID when the case ends, and
SIGTERM (meson's timeout) exits through that cleanup.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_promises3.py
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from kingx_harness import (Conn, Server, ServerPerCase, build_request, cases_of, check, http, key_path, kingx_bin,
                           metric, run_with_servers, wait_for)

SERVERS = ServerPerCase()


def metrics_text(conn):
    """GET /metrics on a keep-alive connection: the text."""
    r = conn.request("GET", "/metrics")
    check(r.status == 200, f"/metrics: {r!r}")
    return r.body.decode()


def sample(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    check(m is not None, f"no sample {name}")
    return float(m.group(1))


def histogram(text, name):
    """({le: cumulative count} in the order exposed, sum, count) of histogram `name`."""
    buckets = {}
    for le, value in re.findall(r'^%s_bucket\{le="([^"]+)"\} (\S+)$' % re.escape(name), text, re.M):
        buckets[le] = float(value)
    check(buckets, f"no buckets of {name}")
    return buckets, sample(text, name + "_sum"), sample(text, name + "_count")


def check_adds_up(text, name, count_of):
    """Buckets cumulative, +Inf = _count = count_of; returns the buckets."""
    buckets, _, count = histogram(text, name)
    values = list(buckets.values())
    check(values == sorted(values), f"{name}: buckets not cumulative: {buckets}")
    check(list(buckets)[-1] == "+Inf" and buckets["+Inf"] == count,
          f"{name}: the +Inf bucket {buckets.get('+Inf')} is not _count {count}")
    check(count == count_of, f"{name}_count {count}, group commits {count_of}")
    return buckets


def test_sync_interval_fdatasyncs_at_least_every_period_and_only_by_the_period():
    period_ms = 50
    s = SERVERS.start("--workers", "1", "--sync", "interval:%d" % period_ms)
    # Small new keys, well under a segment and a key view tail: no other
    # fdatasync of the writer comes with them.
    with Conn(s.port, timeout=60) as m, Conn(s.port, timeout=60) as c:
        wait_for(lambda: sample(metrics_text(m), "kingx_keyspace_ready") == 1, 120, "the key view")
        t_first = time.monotonic()
        before = sample(metrics_text(m), "kingx_writer_fsync_seconds_count")
        stamps = []  # (sent, answered) of each PUT, client clock
        deadline = time.monotonic() + 60
        gap = period_ms / 1000 + 0.002  # the writer's clock counts whole milliseconds

        def windows():
            # Disjoint stretches (sent of j, answered of k] with sent of k more
            # than MS after answered of j: the writer's turn that took PUT k
            # came more than MS after the one that wrote PUT j, so j's bytes
            # were synced in between (or at that turn, before k's answer).
            n, j = 0, 0
            for k in range(len(stamps)):
                if stamps[k][0] > stamps[j][1] + gap:
                    n, j = n + 1, k + 1
                    if j >= len(stamps):
                        break
            return n

        i = 0
        while (len(stamps) < 3000 and time.monotonic() < deadline
               and not (len(stamps) % 50 == 0 and len(stamps) and windows() >= 6)):
            sent = time.monotonic()
            r = c.request("PUT", key_path(f"si/{i:05d}"), b"v%d" % i)
            stamps.append((sent, time.monotonic()))
            check(r.status == 201, f"PUT {i}: {r!r}")
            i += 1
        after = sample(metrics_text(m), "kingx_writer_fsync_seconds_count")
        t_last = time.monotonic()
    syncs = after - before
    least = windows()
    # Syncs are started at least MS - 1 ms apart (whole milliseconds); one
    # may have started before the first reading.
    most = int((t_last - t_first) * 1000 / (period_ms - 1)) + 2
    check(least >= 1, f"{len(stamps)} PUTs in {t_last - t_first:.2f} s held no stretch longer than the period")
    check(syncs >= least, f"{syncs:.0f} fdatasyncs during {len(stamps)} PUTs over {t_last - t_first:.2f} s, in which "
          f"{least} disjoint stretches each held a PUT sent more than {period_ms} ms after an earlier one's answer")
    check(syncs <= most, f"{syncs:.0f} fdatasyncs during {len(stamps)} PUTs over {t_last - t_first:.2f} s: more than "
          f"one per {period_ms} ms ({most})")


def fill_db():
    """bench/fill_db of the build tree of the kingx binary under test (build/src/kingx ->
    build/bench/fill_db), or $KINGX_FILL_DB."""
    path = os.environ.get("KINGX_FILL_DB") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(kingx_bin()))), "bench", "fill_db")
    check(os.access(path, os.X_OK), f"{path} (built with the tests) is missing")
    return path


def test_index_growths_counts_the_growth_of_the_table_by_the_first_key_past_its_load():
    # The shared index starts at 65,536 slots and grows x1.5 when an insert
    # would pass 0.85 of them: 55,705 keys fit, the 55,706th grows it. The
    # open sizes the table for the keys it estimates from the hint files; a
    # database of 55,700 opens into the initial table.
    if SERVERS.server is not None:
        SERVERS.server.cleanup()
    s = SERVERS.server = Server(["--workers", "1"])
    subprocess.run([fill_db(), "--data", s.data_dir, "--keys", "55700", "--value-bytes", "8"],
                   check=True, capture_output=True, timeout=300)
    s.start()
    with Conn(s.port, timeout=60) as c:
        def growths():
            return sample(metrics_text(c), "kingx_index_growths_total")

        check(sample(metrics_text(c), "kingx_engine_keys") == 55700, "kingx_engine_keys after the open")
        check(growths() == 0, f"kingx_index_growths_total after opening 55,700 keys: {growths()}")
        check(c.request("PUT", key_path("key-0"), b"overwritten").status == 204, "overwrite of key-0")
        check(growths() == 0, "kingx_index_growths_total after an overwrite")
        for i in range(5):
            check(c.request("PUT", key_path(f"grow/{i}"), b"new").status == 201, f"PUT grow/{i}")
            check(growths() == 0, f"kingx_index_growths_total at {55701 + i} keys: {growths()}")
        check(c.request("PUT", key_path("grow/5"), b"new").status == 201, "PUT of the 55,706th key")
        check(growths() == 1, f"kingx_index_growths_total after the 55,706th key: {growths()}")
        for i in range(6, 26):
            check(c.request("PUT", key_path(f"grow/{i}"), b"new").status == 201, f"PUT grow/{i}")
        check(growths() == 1, f"kingx_index_growths_total after 20 more keys: {growths()}")
        check(sample(metrics_text(c), "kingx_engine_keys") == 55726, "kingx_engine_keys")
        for key in ("key-0", "key-55699", "grow/0", "grow/25"):
            check(c.request("GET", key_path(key)).status == 200, f"GET {key} after the growth")


def test_batch_size_and_apply_seconds_buckets_add_up():
    s = SERVERS.start("--workers", "1")
    with Conn(s.port, timeout=60) as m:
        start = metrics_text(m)
        b0, _, _ = histogram(start, "kingx_writer_batch_size")
        with Conn(s.port, timeout=60) as c:
            for i in range(20):
                check(c.request("PUT", key_path(f"bs/one-{i}"), b"x" * 100).status == 201, f"PUT {i}")
        ones = metrics_text(m)
        b1 = check_adds_up(ones, "kingx_writer_batch_size", sample(ones, "kingx_writer_batches_total"))
        check(b1["1"] - b0["1"] == 20 and b1["+Inf"] - b0["+Inf"] == 20,
              f"20 PUTs one after another: batch sizes {b0} -> {b1}")

        # Ten PUTs queued while the writer is stopped: it takes them as one batch.
        writer = s.wait_children("kingx-writer", 1)[0]
        conns = [Conn(s.port, timeout=120) for _ in range(10)]
        os.kill(writer, signal.SIGSTOP)
        try:
            for i, c in enumerate(conns):
                c.send(build_request("PUT", key_path(f"bs/ten-{i}"), b"y" * 100))
            wait_for(lambda: sample(metrics_text(m), "kingx_write_queue_entries") == 10, 120, "ten queued writes")
        finally:
            os.kill(writer, signal.SIGCONT)
        for c in conns:
            r = c.read_response()
            check(r.status == 201, f"a queued PUT: {r!r}")
            c.close()
        ten = metrics_text(m)
        batches = sample(ten, "kingx_writer_batches_total")
        b2 = check_adds_up(ten, "kingx_writer_batch_size", batches)
        check(batches - sample(ones, "kingx_writer_batches_total") == 1, "ten PUTs queued together: "
              f"{batches - sample(ones, 'kingx_writer_batches_total'):.0f} group commits, not one")
        grew = {le: b2[le] - b1[le] for le in b2}
        check(grew["8"] == 0 and grew["16"] == 1 and grew["+Inf"] == 1, f"a batch of ten in the buckets: {grew}")
        _, size_sum, _ = histogram(ten, "kingx_writer_batch_size")
        check(size_sum == sample(ten, "kingx_writer_records_total"),
              f"kingx_writer_batch_size_sum {size_sum}, writes applied {sample(ten, 'kingx_writer_records_total')}")

        apply_b = check_adds_up(ten, "kingx_writer_apply_seconds", batches)
        fsync_b, _, _ = histogram(ten, "kingx_writer_fsync_seconds")
        # Each group commit holds its own fdatasync: no more of them end
        # within any bound than fdatasyncs do.
        faster = {le: (apply_b[le], fsync_b[le]) for le in apply_b if apply_b[le] > fsync_b[le]}
        check(not faster, f"group commits counted faster than their fdatasyncs (le: commits, fdatasyncs): {faster}")


def test_a_lingering_close_ends_within_2_s_while_the_client_stays_silent():
    # B connects first and stops in the middle of its headers: its 408 comes
    # 3 s later. A then sends a bad request and gets its 400 and the FIN,
    # and neither sends nor closes: its lingering close must end 2 s after
    # the 400, before B's deadline. One worker, one event loop: the answer
    # to a /metrics request sent after B's 408 came reflects every deadline
    # handled by then (the open connections: B, still lingering, and the
    # metrics connection itself).
    s = SERVERS.start("--workers", "1", "--header-timeout-ms", "3000")
    with Conn(s.port, timeout=60) as m:
        metrics_text(m)
        for attempt in range(5):
            # Connections of an earlier attempt are closed (A, B) before the next.
            wait_for(lambda: sample(metrics_text(m), "kingx_http_open_connections") == 1, 120,
                     "the connections of an earlier attempt to close")
            t0 = time.monotonic()
            b = Conn(s.port, timeout=60)
            a = Conn(s.port, timeout=60)
            try:
                b.send(b"GET /v1/kv/linger HTTP/1.1\r\nHost: x\r\n")
                a.send(b"GET /v1/kv/linger HTTP/1.1\r\nHost: \r\n\r\n")
                r = a.read_response()
                check(r.status == 400, f"the bad request: {r!r}")
                if time.monotonic() - t0 >= 0.5:
                    continue  # loaded: the two deadlines may be closer than the test needs; again
                open_then = sample(metrics_text(m), "kingx_http_open_connections")
                check(open_then == 3, f"open connections while A lingers: {open_then}")
                r = b.read_response()
                check(r.status == 408, f"B's header timeout: {r!r}")
                open_now = sample(metrics_text(m), "kingx_http_open_connections")
                check(open_now == 2, f"open connections once B got its 408 (3 s after it connected): {open_now}, "
                      "with B and the metrics connection 2: A, answered 400 less than 0.5 s after B connected, "
                      "was still lingering")
                return
            finally:
                a.close()
                b.close()
        check(False, "5 attempts each took 0.5 s or more between connecting and the 400")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    run_with_servers("promises (part 3)", cases_of(globals()), SERVERS.current)
