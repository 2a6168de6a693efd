"""Promises of README.md that no other test held the real binary to (the
second part; test_promises.py has the first), each checked where a client
sees it:

  - while the sorted key view is rebuilt, a listing answers 503 with
    Retry-After (`kingx_keyspace_ready` 0) and reads and writes go on
    unaffected: GETs of every key, a PUT of a new key and of an existing
    one, a DELETE, /readyz 200; once the view is built, the listing holds
    exactly the keys as they are then, the writes made meanwhile included
    (`kingx_keyspace_ready` 1, a rebuild and its runs counted). The rebuilt
    view is held unpublished by a fault of the file seam: its MANIFEST
    (which must name the view's new cursor secret before the view answers)
    cannot be renamed into place while a flag file exists;
  - a restart brings the sorted key view up to date from what keys/ holds
    (a catch-up), never a rebuild, after a clean stop (every entry in the
    runs: `kingx_keyspace_run_entries`) and after a kill -9 (the latest
    writes only in the segments);
  - `kingx_writer_read_only` is 1 after a failed fdatasync (the write in
    flight answered 503 outcome unknown) for as long as no writer has
    reopened the database (the respawned writers' opens fail on the same
    fault: `kingx_writer_open_failing` 1, /readyz 503 naming the failed
    fdatasync), and 0 once one has;
  - overwrites faster than compaction reclaims them are held (a write
    stall), never refused: counted in `kingx_compaction_write_stalls_total`
    and `..._stall_seconds_total`, and summed up in at most one info line
    per 10 s of the error log;
  - kingx sets no SO_RCVBUF: an upload's socket starts with the kernel's
    initial receive buffer (tcp_rmem's middle value, read from the worker's
    socket) and the worker sets no option on it while an 8 MiB body is read
    (so autotuning may grow it);
  - the body budget (--body-buffer-bytes) reads a body's first 64 KiB as
    they come (a small body never waits behind large ones) and grants the
    whole reservations of longer bodies first come first served: one that
    would fit waits behind an earlier one that does not;
  - a refused request's info line is written at most 10 times a second per
    process, and a later line counts those left out: 100 refusals in a
    burst, then one at a time until every refusal is logged or counted;
  - a write that cannot read the key's newest record (the writer's mapping
    of its segment fails) is answered 500, changes nothing and is counted
    in `kingx_writer_failed_records_total`;
  - a start without --workers runs one event worker per online CPU;
  - `kingx_write_queue_bytes` counts the bytes of a write waiting in the
    queue (the writer stopped) and falls back to 0 once it is applied;
  - `kingx_writer_staged_bytes` counts a large upload's staging file while
    it is sent; an upload abandoned halfway is counted in
    `kingx_writer_large_aborted_total`, and its staged bytes and file go;
  - `kingx_backups_finished_total` counts a backup whose whole archive was
    sent, and `kingx_backup_cut_max_seconds` its cut (never longer than the
    request).

No timing threshold: each wait is bounded far above what a loaded machine
needs, and every server a case starts is stopped by PID when it ends.

    KINGX_BIN=build/src/kingx python3 tests/blackbox/test_promises2.py
"""

import json
import os
import re
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.parse

from kingx_harness import (Conn, ServerPerCase, adopt, build_request, cases_of, check, http, key_path, metric,
                           run_with_servers, server_rx_queue, socket_option, staging_files, traced_calls, wait_for)
from fault_flag import fail_point_while

SERVERS = ServerPerCase()


def full_listing(port, prefix):
    """[(key, etag, size)] of the whole listing under `prefix`, following
    cursors; None while the view answers 503."""
    out, cursor = [], None
    for _ in range(100):
        query = {"prefix": prefix, **({"cursor": cursor} if cursor else {})}
        r = http(port, "GET", "/v1/kv/?" + urllib.parse.urlencode(query), timeout=60)
        if r.status == 503:
            return None
        check(r.status == 200, f"listing: {r!r}")
        doc = r.json()
        out += [(e["key"], e["etag"], e["size"]) for e in doc["keys"]]
        if doc["list_complete"]:
            return out
        cursor = doc["cursor"]
    raise AssertionError("listing did not complete in 100 pages")


def test_listing_is_503_while_the_view_is_rebuilt_and_reads_and_writes_go_on():
    # Small segments: the keys fill sealed segments (read back through their
    # hints) and the active one, which a kill -9 leaves without an intact
    # hint (the rebuild reads its records). The rebuilt view turns ready
    # only once a MANIFEST names its new cursor secret: failing that
    # MANIFEST's rename holds the view unpublished, retried every second.
    s = SERVERS.start("--workers", "1", "--segment-bytes", "65536", "--compression-level", "0")
    values = {f"rb/{i:03d}": os.urandom(6000) for i in range(60)}
    etags = {}
    for key, value in values.items():
        r = http(s.port, "PUT", key_path(key), value, timeout=60)
        check(r.status == 201, f"PUT {key}: {r!r}")
        etags[key] = r.header("ETag")
    s.kill_group()
    segments = sorted(n for n in os.listdir(s.data_dir) if n.startswith("seg-") and n.endswith(".kxd"))
    check(len(segments) >= 3, f"segments {segments}")
    shutil.rmtree(os.path.join(s.data_dir, "keys"), ignore_errors=True)
    flag = os.path.join(s.workdir, "view-fault")
    open(flag, "w").close()
    with fail_point_while("kingx-writer/rename@keys/MANIFEST:1+", flag):
        s.start()

    def listing_503(when):
        r = http(s.port, "GET", "/v1/kv/?prefix=rb/", timeout=60)
        check(r.status == 503 and r.header("Retry-After") is not None, f"listing {when}: {r!r}")
        check((r.header("Content-Type") or "").startswith("application/problem+json"), f"listing {when}: {r!r}")
        check(metric(s.port, "kingx_keyspace_ready") == 0, f"kingx_keyspace_ready {when}")

    listing_503("while the view cannot be built")
    check(http(s.port, "GET", "/readyz").status == 200, "/readyz while the view is rebuilt")
    for key, value in values.items():
        r = http(s.port, "GET", key_path(key), timeout=60)
        check(r.status == 200 and r.body == value and r.header("ETag") == etags[key],
              f"GET {key} while the view is rebuilt: {r!r}")
    first, second = sorted(values)[:2]  # in the first segment, whose hint is intact
    r = http(s.port, "PUT", key_path(first), b"overwritten meanwhile", timeout=60)
    check(r.status == 204, f"overwrite of {first} while the view is rebuilt: {r!r}")
    values[first], etags[first] = b"overwritten meanwhile", r.header("ETag")
    r = http(s.port, "DELETE", key_path(second), timeout=60)
    check(r.status == 204, f"DELETE {second} while the view is rebuilt: {r!r}")
    del values[second], etags[second]
    for i in range(5):
        key = f"rb/new-{i}"
        r = http(s.port, "PUT", key_path(key), b"new %d" % i, timeout=60)
        check(r.status == 201, f"PUT {key} while the view is rebuilt: {r!r}")
        values[key], etags[key] = b"new %d" % i, r.header("ETag")
    for key in (first, "rb/new-0"):
        r = http(s.port, "GET", key_path(key), timeout=60)
        check(r.status == 200 and r.body == values[key], f"GET {key} after its write: {r!r}")
    check(http(s.port, "GET", key_path(second)).status == 404, f"{second} after its DELETE")
    listing_503("after the writes")

    os.unlink(flag)  # the rename works again: the next checkpoint publishes the view
    got = wait_for(lambda: full_listing(s.port, "rb/"), 120, "the listing once the view could be built")
    want = [(k, etags[k], len(values[k])) for k in sorted(values)]
    check(got == want, f"the listing after the rebuild: {len(got)} entries, want {len(want)}; "
          f"differing: {sorted(set(got) ^ set(want))[:6]}")
    check(metric(s.port, "kingx_keyspace_ready") == 1, "kingx_keyspace_ready once the view is built")
    check(metric(s.port, "kingx_keyspace_rebuilds_total") >= 1, "kingx_keyspace_rebuilds_total")
    check(metric(s.port, "kingx_keyspace_runs_written_total") >= 1, "kingx_keyspace_runs_written_total")
    check(metric(s.port, "kingx_keyspace_run_bytes_written_total") > 0, "kingx_keyspace_run_bytes_written_total")


def test_a_restart_catches_the_view_up_from_its_runs_instead_of_rebuilding_it():
    # keys/ is derived data kept across restarts: a clean stop leaves every
    # entry in its runs, a kill -9 leaves the latest writes only in the
    # segments, and either way the next start brings the view up to date
    # from what keys/ already holds (a catch-up), never a rebuild.
    s = SERVERS.start("--workers", "1")
    keys = [f"cu/{i:02d}" for i in range(30)]
    for key in keys:
        check(http(s.port, "PUT", key_path(key), b"v").status == 201, f"PUT {key}")
    check(s.stop() == 0, "clean stop")
    s.start()
    check(wait_for(lambda: full_listing(s.port, "cu/"), 120, "the listing after a clean restart") is not None, "")
    check(metric(s.port, "kingx_keyspace_rebuilds_total") == 0, "kingx_keyspace_rebuilds_total after a clean restart")
    check(metric(s.port, "kingx_keyspace_catch_ups_total") == 1, "kingx_keyspace_catch_ups_total after a clean restart")
    check(metric(s.port, "kingx_keyspace_run_entries") == len(keys),
          f"kingx_keyspace_run_entries after a clean restart: {metric(s.port, 'kingx_keyspace_run_entries')}, "
          f"{len(keys)} keys were written before the stop")
    more = [f"cu/new-{i}" for i in range(10)]
    for key in more:
        check(http(s.port, "PUT", key_path(key), b"v").status == 201, f"PUT {key}")
    s.kill_group()
    s.start()
    got = wait_for(lambda: full_listing(s.port, "cu/"), 120, "the listing after a kill -9")
    check([k for k, _, _ in got] == sorted(keys + more), f"the listing after a kill -9: {len(got)} entries")
    check(metric(s.port, "kingx_keyspace_rebuilds_total") == 0, "kingx_keyspace_rebuilds_total after a kill -9")
    check(metric(s.port, "kingx_keyspace_catch_ups_total") >= 1, "kingx_keyspace_catch_ups_total after a kill -9")


def test_writer_read_only_is_1_after_a_failed_fdatasync_until_the_writer_reopens():
    # Every fdatasync of the writer fails while the flag exists: the write
    # in flight is answered outcome unknown, and the respawned writers'
    # opens fail too, so no open succeeds until the flag goes.
    flag_dir = tempfile.mkdtemp(prefix="kingx-bb-ro-")
    flag = os.path.join(flag_dir, "sync-fault")
    try:
        with fail_point_while("kingx-writer/sync:1+", flag):
            s = SERVERS.start("--workers", "1", "--storage-timeout-ms", "60000")
        check(http(s.port, "PUT", key_path("ro/before"), b"before", timeout=60).status == 201,
              "PUT before the fault")
        check(metric(s.port, "kingx_writer_read_only") == 0, "kingx_writer_read_only before a failed fdatasync")
        open(flag, "w").close()
        r = http(s.port, "PUT", key_path("ro/during"), b"during", timeout=120)
        check(r.status == 503 and b"unknown" in r.body, f"the PUT whose fdatasync failed: {r!r}")
        wait_for(lambda: metric(s.port, "kingx_writer_open_failing") == 1, 120,
                 "a respawned writer's open to fail on the same fault")
        check(metric(s.port, "kingx_writer_read_only") == 1,
              "kingx_writer_read_only while no writer reopened the database since the failed fdatasync")
        r = http(s.port, "GET", "/readyz")
        check(r.status == 503 and b"failed fdatasync" in r.body, f"/readyz while the writer cannot reopen: {r!r}")
        os.unlink(flag)
        s.wait_ready(120)
        wait_for(lambda: metric(s.port, "kingx_writer_read_only") == 0, 120,
                 "kingx_writer_read_only back to 0 once a writer reopened the database")
        check(http(s.port, "GET", key_path("ro/before")).body == b"before", "the write acknowledged before the fault")
    finally:
        shutil.rmtree(flag_dir, ignore_errors=True)


def test_overwrites_faster_than_compaction_stall_are_counted_and_logged_at_most_every_10_s():
    # One live value of 512 KiB overwritten in a row: each overwrite leaves
    # 512 KiB dead, so the backlog passes its bound (half the live data, at
    # least 1 MiB) within a few writes and the writer holds the next batch.
    s = SERVERS.start("--workers", "1", "--segment-bytes", "1048576", "--compression-level", "0",
                      "--log-level", "info")
    t0 = time.monotonic()
    value = b""
    for i in range(12):
        value = os.urandom(512 << 10)
        r = http(s.port, "PUT", key_path("stall/one"), value, timeout=120)
        check(r.status in (201, 204), f"overwrite {i} (a held write is delayed, never refused): {r!r}")
    elapsed = time.monotonic() - s.started_at
    check(metric(s.port, "kingx_compaction_write_stalls_total") >= 1, "kingx_compaction_write_stalls_total")
    check(metric(s.port, "kingx_compaction_write_stall_seconds_total") > 0,
          "kingx_compaction_write_stall_seconds_total")
    check(http(s.port, "GET", key_path("stall/one")).body == value, "the last overwrite")
    with open(s.error_log, errors="replace") as f:
        lines = [ln for ln in f if "[info]" in ln and re.search(r"writes wait(ed)? for compaction", ln)]
    check(lines, "no info line about writes waiting for compaction")
    most = 1 + int(elapsed // 10)
    check(len(lines) <= most, f"{len(lines)} stall info lines in {elapsed:.1f} s since the start (at most one per "
          f"10 s: {most}); overwrites took {time.monotonic() - t0:.1f} s:\n" + "".join(lines[:5]))


def test_kingx_sets_no_so_rcvbuf_so_an_upload_s_receive_buffer_autotunes():
    # A socket whose SO_RCVBUF was set (on it or on the listener it came
    # from) starts at twice that value and is locked there; one left alone
    # starts at tcp_rmem's middle value, and the kernel's autotuning grows it
    # as it is read. What kingx decides, read exactly: the accepted socket's
    # SO_RCVBUF (from the worker's own socket) is the kernel's initial value,
    # and the worker makes no setsockopt call on it while an 8 MiB body is
    # read (how far autotuning then grows it is the kernel's business, and
    # under memory pressure it may not).
    with open("/proc/sys/net/ipv4/tcp_rmem") as f:
        initial = int(f.read().split()[1])
    s = SERVERS.start("--workers", "1", "--compression-level", "0")
    size = 8 << 20
    with Conn(s.port, timeout=120) as c:
        c.send(build_request("PUT", key_path("rcvbuf"), None, [("Content-Length", str(size))]))
        side = wait_for(lambda: s.server_side_of_client_port(c.local_port()), 60, "the server's end of the connection")
        first = socket_option(side[0], side[1], socket.SOL_SOCKET, socket.SO_RCVBUF)
        check(first == initial, f"the accepted socket's receive buffer {first}, tcp_rmem's middle value {initial}")
        chunk = os.urandom(1 << 20)

        def upload():
            for _ in range(size // len(chunk)):
                c.send(chunk)
            r = c.read_response()
            check(r.status == 201, f"the upload: {r!r}")

        calls = traced_calls(side[0], ["setsockopt"], upload, fd=side[1])
    check(calls["setsockopt"] == 0, f"the worker made {calls['setsockopt']} setsockopt calls on an upload's socket "
                                    f"while its {size >> 20} MiB body was read")


def test_the_body_budget_reads_small_bodies_at_once_and_grants_whole_reservations_in_order():
    # With a 1 MiB budget, whole reservations (twice a body of at most a part)
    # may hold 3/4 of it (786,432 bytes). A body's first 64 KiB are read as
    # they come; past them it waits for its whole reservation behind earlier
    # ones, even when its own would fit; a body within 64 KiB never waits.
    # The memory budget alone: without spilling (as once the spill budget is
    # used up), a waiting upload keeps what it read.
    s = SERVERS.start("--workers", "1", "--body-buffer-bytes", "1048576", "--compression-level", "0",
                      "--body-spill-bytes", "0")
    window = 64 << 10
    lengths = {"holder": 300_000, "a": 200_000, "b": 40_000, "c": 80_000}  # whole: 600k, 400k, -, 160k
    values = {k: os.urandom(n) for k, n in lengths.items()}
    socks = {}

    def begin(name, first):
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=120)
        socks[name] = sock
        sock.sendall(build_request("PUT", key_path(f"order/{name}"), None, [("Content-Length", str(lengths[name]))]))
        sock.sendall(values[name][:first])
        return sock

    def waits_past_its_window(name, first):
        # Its window read (so it asked for its whole reservation) and the rest
        # left unread: it waits.
        def waiting():
            q = server_rx_queue(s.port, socks[name].getsockname()[1])
            return q is not None and 0 < q <= first - window
        wait_for(waiting, 120, f"{name} to read its window and wait")

    def answered(name):
        # Everything the worker wrote before it served a later request on another
        # connection has arrived by the time that request's answer has.
        check(http(s.port, "GET", "/healthz").status == 200, "/healthz")
        readable, _, _ = select.select([socks[name]], [], [], 0)
        return socks[name].recv(4096) if readable else b""

    def finish(name, sent):
        socks[name].sendall(values[name][sent:])
        r = adopt(socks[name], s.port, 120).read_response()
        check(r.status == 201, f"the upload {name}: {r!r}")

    try:
        begin("holder", 100_000)  # past its window: holds 600k of the 786k share
        wait_for(lambda: server_rx_queue(s.port, socks["holder"].getsockname()[1]) == 0, 120, "the holder read")
        begin("a", 100_000)  # 400k more does not fit: a waits
        waits_past_its_window("a", 100_000)
        r = http(s.port, "PUT", key_path("order/b"), values["b"], timeout=120)
        check(r.status == 201, f"b, within its window, beside a waiting upload: {r!r}")
        begin("c", 80_000)  # 160k would fit, but a came first
        waits_past_its_window("c", 80_000)
        for name in ("a", "c"):
            early = answered(name)
            check(early == b"", f"{name} was answered while the holder held the room: {early[:80]!r}")
        finish("holder", 100_000)
        finish("a", 100_000)
        finish("c", 80_000)
        for name in lengths:
            check(http(s.port, "GET", key_path(f"order/{name}")).body == values[name], f"{name}'s value differs")
    finally:
        for sock in socks.values():
            sock.close()


def test_refusals_are_logged_at_most_10_a_second_and_the_next_line_counts_those_left_out():
    s = SERVERS.start("--workers", "1", "--log-level", "info")
    refused = 0

    def refuse(conn):
        nonlocal refused
        r = conn.request("PATCH", key_path("refused"), b"x")
        check(r.status == 501, f"PATCH: {r!r}")
        refused += 1

    def log_lines():
        with open(s.error_log, errors="replace") as f:
            return [ln for ln in f if "client refused with 501" in ln]

    def counted(lines):
        return sum(int(m.group(1)) for ln in lines for m in [re.search(r"\((\d+) more refused clients not logged\)", ln)]
                   if m)

    with Conn(s.port, timeout=60) as c:
        t0 = time.monotonic()
        for _ in range(100):
            refuse(c)
        elapsed = time.monotonic() - t0
        burst = len(wait_for(log_lines, 60, "the refusals' info lines"))
        most = 10 * (int(elapsed) + 2)
        check(burst <= most, f"{burst} info lines for 100 refusals in {elapsed:.2f} s (at most 10 a second: {most})")
        # One refusal at a time until a later window's line counts those left
        # out: then every refusal was logged or counted.
        def accounted():
            lines = log_lines()
            if counted(lines) and len(lines) + counted(lines) == refused:
                return lines
            refuse(c)
            return None
        lines = wait_for(accounted, 120, "an info line counting the refusals left out")
    check(counted(lines) > 0, f"{len(lines)} lines counting {counted(lines)} left out, for {refused} refusals")


def test_a_write_that_cannot_read_the_key_s_record_is_answered_500_and_counted():
    # An overwrite reads the key's newest record (the writer maps its
    # segment): while that mapping fails, the write is answered with the
    # error, counted in kingx_writer_failed_records_total, and changes nothing.
    flag_dir = tempfile.mkdtemp(prefix="kingx-bb-fr-")
    flag = os.path.join(flag_dir, "map-fault")
    try:
        with fail_point_while("kingx-writer/map@seg-:1+", flag):
            s = SERVERS.start("--workers", "1")
        r = http(s.port, "PUT", key_path("fr/key"), b"first", timeout=60)
        check(r.status == 201, f"PUT: {r!r}")
        etag = r.header("ETag")
        failed = metric(s.port, "kingx_writer_failed_records_total")
        check(failed == 0, f"kingx_writer_failed_records_total before any failure: {failed}")
        open(flag, "w").close()
        r = http(s.port, "PUT", key_path("fr/key"), b"second", timeout=60)
        check(r.status == 500, f"an overwrite whose record cannot be read: {r!r}")
        wait_for(lambda: metric(s.port, "kingx_writer_failed_records_total") == 1, 60,
                 "kingx_writer_failed_records_total to count the write answered 500")
        os.unlink(flag)
        r = http(s.port, "GET", key_path("fr/key"))
        check(r.status == 200 and r.body == b"first" and r.header("ETag") == etag, f"after the failed write: {r!r}")
        check(http(s.port, "PUT", key_path("fr/key"), b"third", timeout=60).status == 204, "an overwrite once it reads")
        check(metric(s.port, "kingx_writer_failed_records_total") == 1, "kingx_writer_failed_records_total after it")
    finally:
        shutil.rmtree(flag_dir, ignore_errors=True)


def test_a_default_start_runs_one_worker_per_cpu():
    cpus = min(os.sysconf("SC_NPROCESSORS_ONLN"), 256)  # auto is capped at 256
    s = SERVERS.start()
    workers = s.wait_children("kingx-worker", cpus, timeout=120)
    with open(s.error_log, errors="replace") as f:
        started = re.search(r"kingx master started: (\d+) event worker", f.read())
    check(started and int(started.group(1)) == cpus and len(workers) == cpus,
          f"{len(workers)} worker processes, the master says {started and started.group(1)}, for {cpus} CPUs")


def test_write_queue_bytes_counts_a_write_waiting_for_the_writer():
    s = SERVERS.start("--workers", "1", "--storage-timeout-ms", "600000")
    check(metric(s.port, "kingx_write_queue_bytes") == 0, "kingx_write_queue_bytes with nothing queued")
    writer = s.wait_children("kingx-writer", 1)[0]
    value = os.urandom(20000)
    os.kill(writer, signal.SIGSTOP)
    try:
        with Conn(s.port, timeout=120) as c:
            c.send(build_request("PUT", key_path("queued"), value))
            wait_for(lambda: metric(s.port, "kingx_write_queue_bytes") >= len(value), 120,
                     f"kingx_write_queue_bytes to hold the {len(value)} bytes of the waiting write")
            os.kill(writer, signal.SIGCONT)
            r = c.read_response()
            check(r.status == 201, f"the queued PUT: {r!r}")
    finally:
        os.kill(writer, signal.SIGCONT)
    wait_for(lambda: metric(s.port, "kingx_write_queue_bytes") == 0, 120,
             "kingx_write_queue_bytes back to 0 once the write was applied")
    check(http(s.port, "GET", key_path("queued")).body == value, "the queued value")


def test_staged_bytes_and_abandoned_uploads_are_counted():
    s = SERVERS.start("--workers", "1", "--compression-level", "0")
    check(metric(s.port, "kingx_writer_staged_bytes") == 0, "kingx_writer_staged_bytes with no upload")
    aborted = metric(s.port, "kingx_writer_large_aborted_total")
    size, sent = 6 << 20, 3 << 20
    with Conn(s.port, timeout=120) as c:
        c.send(build_request("PUT", key_path("abandoned"), None, [("Content-Length", str(size))]))
        c.send(os.urandom(sent))
        wait_for(lambda: sum(staging_files(s.data_dir).values()) >= 1 << 20, 120, "the upload to stage")
        staged = wait_for(lambda: metric(s.port, "kingx_writer_staged_bytes"), 120, "kingx_writer_staged_bytes")
        check(1 << 20 <= staged <= size + (1 << 20), f"kingx_writer_staged_bytes {staged} for {sent} bytes sent "
              f"of a {size}-byte upload (staging files {staging_files(s.data_dir)})")
    # The client went away halfway.
    wait_for(lambda: metric(s.port, "kingx_writer_large_aborted_total") == aborted + 1, 120,
             "kingx_writer_large_aborted_total to count the abandoned upload")
    wait_for(lambda: metric(s.port, "kingx_writer_staged_bytes") == 0, 120, "kingx_writer_staged_bytes back to 0")
    wait_for(lambda: not staging_files(s.data_dir), 120, "the abandoned upload's staging file to go")
    check(http(s.port, "GET", key_path("abandoned")).status == 404, "an abandoned upload was stored")


def test_a_finished_backup_is_counted_and_its_cut_timed():
    s = SERVERS.start("--workers", "1", admin=True)
    admin = s.admin_port
    for i in range(20):
        check(http(s.port, "PUT", key_path(f"bk/{i}"), os.urandom(300)).status == 201, "PUT")
    check(metric(admin, "kingx_backups_finished_total") == 0, "kingx_backups_finished_total before a backup")
    t0 = time.monotonic()
    r = http(admin, "GET", "/admin/backup", timeout=120)
    elapsed = time.monotonic() - t0
    check(r.status == 200 and len(r.body) > 20 * 300, f"backup: {r.status}, {len(r.body)} bytes")
    wait_for(lambda: metric(admin, "kingx_backups_finished_total") == 1, 60, "kingx_backups_finished_total 1")
    cut = metric(admin, "kingx_backup_cut_max_seconds")
    check(0 <= cut <= elapsed, f"kingx_backup_cut_max_seconds {cut} for a backup answered in {elapsed:.3f} s")


if __name__ == "__main__":
    # meson's timeout sends SIGTERM: exit through the finally blocks that stop
    # the server in use, not past them.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    run_with_servers("promises (part 2)", cases_of(globals()), SERVERS.current)
